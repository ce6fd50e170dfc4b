//! What the command lines of `echo_server` and `line_client` share.

/// The escaped form a shell passes easily: `\r`, `\n`, `\t` and `\\`
/// become the bytes they name, read left to right (so `\\n` is a
/// backslash and an `n`); any other character stays as it is.
pub fn unescape(text: &str) -> Vec<u8> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out.into_bytes()
}
