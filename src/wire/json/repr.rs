//! Python's text for the scalars `json.dumps` writes: `repr(float)` and
//! strings with `ensure_ascii`.

use std::fmt::Write as _;

/// Appends `value` as Python's `repr` writes a float (which is what
/// `json.dumps` writes): the shortest digits that read back to the same
/// double (of two equally near, the even one), in positional notation
/// when the decimal point falls within 16 digits of them (`100.0`,
/// `0.0001`, `1000000000000000.0`), else in exponent notation with a
/// signed exponent of at least two digits (`1e+16`, `2.5e-08`); `NaN`,
/// `Infinity` and `-Infinity` for the non-finite.
pub(crate) fn write_float(out: &mut Vec<u8>, value: f64) {
    if value.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if value.is_infinite() {
        out.extend_from_slice(if value > 0.0 {
            b"Infinity"
        } else {
            b"-Infinity"
        });
        return;
    }
    if value == 0.0 {
        out.extend_from_slice(if value.is_sign_negative() {
            b"-0.0"
        } else {
            b"0.0"
        });
        return;
    }
    if value.is_sign_negative() {
        out.push(b'-');
    }
    let shortest = Shortest::of(value.abs());
    let digits = shortest.digits();
    let Some((&first, rest)) = digits.split_first() else {
        return;
    };
    // The value is 0.d1d2...dn x 10^point.
    let point = shortest.exponent + digits.len() as i32;
    if point <= -4 || point > 16 {
        out.push(first);
        if !rest.is_empty() {
            out.push(b'.');
            out.extend_from_slice(rest);
        }
        let e = point - 1;
        out.extend_from_slice(if e < 0 { b"e-" } else { b"e+" });
        let e = e.unsigned_abs();
        if e >= 100 {
            out.push(b'0' + (e / 100 % 10) as u8);
        }
        out.extend_from_slice(&[b'0' + (e / 10 % 10) as u8, b'0' + (e % 10) as u8]);
    } else if point <= 0 {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + point.unsigned_abs() as usize, b'0');
        out.extend_from_slice(digits);
    } else if point as usize >= digits.len() {
        out.extend_from_slice(digits);
        out.resize(out.len() + point as usize - digits.len(), b'0');
        out.extend_from_slice(b".0");
    } else {
        let (whole, fraction) = digits.split_at(point as usize);
        out.extend_from_slice(whole);
        out.push(b'.');
        out.extend_from_slice(fraction);
    }
}

/// Appends `value` in decimal, as Python writes an int.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[at..]);
}

/// Appends `value` in decimal, as Python writes an int.
pub(crate) fn write_i64(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    write_u64(out, value.unsigned_abs());
}

/// Text in a buffer on the stack: what `{:e}` writes of an f64 fits.
struct StackText {
    buf: [u8; 32],
    len: usize,
}

impl StackText {
    fn new() -> StackText {
        StackText {
            buf: [0; 32],
            len: 0,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The shortest decimal `digits x 10^exponent` that reads back as a
/// double (finite, above zero), and of two such equally near it the one
/// with an even last digit, as Python's repr (David Gay's dtoa) picks.
struct Shortest {
    digits: [u8; 20],
    len: usize,
    exponent: i32,
}

impl Shortest {
    fn of(value: f64) -> Shortest {
        // Rust's `{:e}` gives the shortest digits, the nearest of them; on
        // an exact tie it may take the odd one. `d.ddde-N`.
        let mut text = StackText::new();
        let _ = write!(text, "{value:e}");
        let text = text.bytes();
        let (mantissa, exponent) = match text.iter().position(|&b| b == b'e') {
            Some(e) => (&text[..e], &text[e + 1..]),
            None => (text, &b"0"[..]),
        };
        let mut shortest = Shortest {
            digits: [0; 20],
            len: 0,
            exponent: 0,
        };
        for &b in mantissa.iter().filter(|b| b.is_ascii_digit()) {
            if let Some(slot) = shortest.digits.get_mut(shortest.len) {
                *slot = b;
                shortest.len += 1;
            }
        }
        let fraction_len = mantissa
            .iter()
            .position(|&b| b == b'.')
            .map_or(0, |p| mantissa.len() - p - 1);
        let (negative, magnitude) = match exponent.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, exponent),
        };
        let magnitude = magnitude
            .iter()
            .fold(0i32, |n, &d| n * 10 + i32::from(d.wrapping_sub(b'0') % 10));
        let exponent = if negative { -magnitude } else { magnitude };
        shortest.exponent = exponent - fraction_len as i32;
        if shortest.digits().last().is_some_and(|d| d % 2 == 1) {
            shortest.prefer_even(value);
        }
        shortest
    }

    fn digits(&self) -> &[u8] {
        &self.digits[..self.len]
    }

    /// An odd last digit exactly halfway: the even neighbour, if it reads
    /// back.
    fn prefer_even(&mut self, value: f64) {
        let digits = self
            .digits()
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        for other in [digits - 1, digits + 1] {
            let halfway = digits + other; // twice the midpoint
            if equals_decimal(value, halfway, self.exponent, true)
                && reads_back(other, self.exponent, value)
            {
                let mut text = Vec::with_capacity(20);
                write_u64(&mut text, other);
                self.len = text.len().min(self.digits.len());
                self.digits[..self.len].copy_from_slice(&text[..self.len]);
                return;
            }
        }
    }
}

/// `value == m x 10^k`, or with `halved`, `value == m x 10^k / 2`, exactly.
fn equals_decimal(value: f64, m: u64, k: i32, halved: bool) -> bool {
    // value = f x 2^e, f an integer below 2^53.
    let bits = value.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (f, e) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), biased - 1075)
    };
    let e = if halved { e + 1 } else { e };
    // Odd parts and powers of two must match. An odd part below 2^60 on
    // either side bounds the power of five on the other: 5^27 > 2^60.
    if k >= 0 {
        k <= 27 && same(u128::from(m) * 5u128.pow(k as u32), k, u128::from(f), e)
    } else {
        let j = -k;
        j <= 27 && same(u128::from(f) * 5u128.pow(j as u32), e + j, u128::from(m), 0)
    }
}

/// `a x 2^ea == b x 2^eb`, for `a`, `b` above zero.
fn same(a: u128, ea: i32, b: u128, eb: i32) -> bool {
    let (za, zb) = (a.trailing_zeros(), b.trailing_zeros());
    a != 0 && b != 0 && a >> za == b >> zb && ea + za as i32 == eb + zb as i32
}

fn reads_back(digits: u64, exponent: i32, value: f64) -> bool {
    let mut text = StackText::new();
    let _ = write!(text, "{digits}e{exponent}");
    std::str::from_utf8(text.bytes())
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        == Some(value)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `text` as a JSON string the way `json.dumps` writes it with
/// `ensure_ascii`: printable ASCII (space to `~`) as it is, except `"` and
/// `\`; the short escapes `\" \\ \n \r \t \b \f`; every other character
/// as `\uXXXX` in lowercase hex, beyond the BMP as a surrogate pair. The
/// result is ASCII.
pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut plain_from = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\' {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[plain_from..i]);
        let short = match b {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'\n' => Some(b'n'),
            b'\r' => Some(b'r'),
            b'\t' => Some(b't'),
            0x08 => Some(b'b'),
            0x0c => Some(b'f'),
            _ => None,
        };
        if let Some(letter) = short {
            out.extend_from_slice(&[b'\\', letter]);
            i += 1;
        } else {
            // `i` is at a character's first byte: every byte before it
            // was consumed whole, a character at a time.
            let c = text[i..].chars().next().unwrap_or('\u{fffd}');
            for unit in c.encode_utf16(&mut [0; 2]) {
                let u = *unit as usize;
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    HEX[u >> 12],
                    HEX[(u >> 8) & 0xf],
                    HEX[(u >> 4) & 0xf],
                    HEX[u & 0xf],
                ]);
            }
            i += c.len_utf8();
        }
        plain_from = i;
    }
    out.extend_from_slice(&bytes[plain_from..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(value: f64) -> String {
        let mut out = Vec::new();
        write_float(&mut out, value);
        String::from_utf8(out).expect("ASCII")
    }

    fn string(text: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, text);
        String::from_utf8(out).expect("ASCII")
    }

    #[test]
    fn floats_are_written_as_python_s_repr() {
        // repr() of each, from Python 3.
        let cases: [(f64, &str); 24] = [
            (1.0, "1.0"),
            (-1.0, "-1.0"),
            (100.0, "100.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (2.5e-8, "2.5e-08"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (9007199254740992.0, "9007199254740992.0"),
            (5e-324, "5e-324"),
            (2.2250738585072014e-308, "2.2250738585072014e-308"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN, "-1.7976931348623157e+308"),
            (1e22, "1e+22"),
            (1e100, "1e+100"),
            (-0.000123, "-0.000123"),
            (12345.678, "12345.678"),
            // Halfway between ...255.2 and ...255.3: Python takes the even.
            (866_934_309_767_255.0 + 0.25, "866934309767255.2"),
            (866_934_309_767_255.0 + 0.75, "866934309767255.8"),
        ];
        for (value, want) in cases {
            assert_eq!(float(value), want, "{value:e}");
        }
    }

    #[test]
    fn zero_and_the_non_finite_floats_are_written_as_python_does() {
        assert_eq!(float(0.0), "0.0");
        assert_eq!(float(-0.0), "-0.0");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(-f64::NAN), "NaN");
        assert_eq!(float(f64::INFINITY), "Infinity");
        assert_eq!(float(f64::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn strings_escape_everything_outside_printable_ascii_as_python_does() {
        assert_eq!(string(""), r#""""#);
        assert_eq!(string("plain / text ~"), r#""plain / text ~""#);
        assert_eq!(string("q\"b\\"), r#""q\"b\\""#);
        assert_eq!(
            string("\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}"),
            r#""\n\r\t\b\f\u0000\u001f\u007f""#
        );
        assert_eq!(string("café"), r#""caf\u00e9""#);
        assert_eq!(string("\u{80}\u{2028}\u{ffff}"), r#""\u0080\u2028\uffff""#);
        assert_eq!(string("𝄞😀"), r#""\ud834\udd1e\ud83d\ude00""#);
        assert_eq!(string("\u{10ffff}x"), r#""\udbff\udfffx""#);
    }
}
