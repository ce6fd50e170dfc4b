//! Python's text for the scalars `json.dumps` writes: `repr(float)` and
//! strings with `ensure_ascii`.

use std::io::Write as _;

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
    let (digits, exponent) = shortest(value.abs());
    let mut text = [0u8; 20];
    let n = {
        let mut cursor = std::io::Cursor::new(&mut text[..]);
        let _ = write!(cursor, "{digits}");
        cursor.position() as usize
    };
    let digits = &text[..n];
    let Some((&first, rest)) = digits.split_first() else {
        return;
    };
    // The value is 0.d1d2...dn x 10^point.
    let point = exponent + n as i32;
    if point <= -4 || point > 16 {
        out.push(first);
        if !rest.is_empty() {
            out.push(b'.');
            out.extend_from_slice(rest);
        }
        let e = point - 1;
        let _ = write!(out, "e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    } else if point <= 0 {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + (-point) as usize, b'0');
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

/// The shortest decimal `digits x 10^exponent` that reads back as `value`
/// (finite, above zero), and of two such equally near it the one with an
/// even last digit, as Python's repr (David Gay's dtoa) picks.
fn shortest(value: f64) -> (u64, i32) {
    // Rust's `{:e}` gives the shortest digits, the nearest of them; on an
    // exact tie it may take the odd one.
    let mut buf = [0u8; 32];
    let len = {
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        let _ = write!(cursor, "{value:e}");
        cursor.position() as usize
    };
    let text = std::str::from_utf8(&buf[..len]).unwrap_or("0e0");
    let (mantissa, exp) = text.split_once('e').unwrap_or((text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let fraction_len = mantissa.split_once('.').map_or(0, |(_, f)| f.len());
    let digits: u64 = mantissa
        .bytes()
        .filter(u8::is_ascii_digit)
        .fold(0, |n, d| n * 10 + u64::from(d - b'0'));
    let exponent = exp - fraction_len as i32;
    if digits % 2 == 1 {
        // An odd last digit halfway: the even neighbour, if it reads back.
        for other in [digits - 1, digits + 1] {
            let halfway = digits + other; // twice the midpoint
            if equals_decimal(value, halfway, exponent, true) && reads_back(other, exponent, value)
            {
                return (other, exponent);
            }
        }
    }
    (digits, exponent)
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
    let mut buf = [0u8; 32];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let _ = write!(cursor, "{digits}e{exponent}");
    let len = cursor.position() as usize;
    std::str::from_utf8(&buf[..len])
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
