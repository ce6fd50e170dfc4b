//! The error's size, its families, and what its messages show.

use super::*;
use std::error::Error as _;

#[test]
fn an_error_is_two_words() {
    assert_eq!(std::mem::size_of::<Error>(), 16);
    assert_eq!(std::mem::size_of::<Result<()>>(), 16);
}

#[test]
fn connection_errors_are_the_python_family() {
    let lost = Error::ConnectionLost(io::ErrorKind::BrokenPipe.into());
    let eof = Error::incomplete(b"ab".to_vec(), Some(4));
    assert!(lost.is_connection_error() && eof.is_connection_error());
    assert_eq!(eof.partial(), Some(&b"ab"[..]));
    for other in [
        Error::Timeout,
        Error::overrun(1, 2),
        Error::invalid_argument("x"),
        Error::Io(io::ErrorKind::AddrInUse.into()),
    ] {
        assert!(!other.is_connection_error(), "{other}");
    }
}

/// The error of reading `line` as a `T`.
fn json_error_as<T: serde::de::DeserializeOwned + std::fmt::Debug>(line: &str) -> Error {
    let source = serde_json::from_str::<T>(line).unwrap_err();
    Error::json(line.to_owned(), source)
}

fn json_error(line: &str) -> Error {
    json_error_as::<serde_json::Value>(line)
}

#[test]
fn json_display_holds_a_short_line_verbatim_and_the_cause_is_the_source() {
    let err = json_error("[1,] \"quoted\"");
    let text = err.to_string();
    assert_eq!(text, "invalid JSON in line: [1,] \"quoted\"");
    let source = err.source().expect("serde_json's error").to_string();
    assert!(!text.contains(&source), "{text} repeats {source}");
}

#[test]
fn json_display_cuts_a_long_line_but_the_error_keeps_it_whole() {
    let line = format!("[{}", "é".repeat(1000));
    let err = json_error(&line);
    let text = err.to_string();
    assert!(text.contains("in line of 1001 characters: [éé"), "{text}");
    assert!(text.chars().count() < 300, "{text}");
    let Error::Json(details) = err else {
        panic!("not a JSON error")
    };
    assert_eq!(details.line, line);
}

#[test]
fn json_display_tells_wrong_shape_and_non_finite_numbers() {
    assert!(json_error_as::<u32>("\"seven\"")
        .to_string()
        .starts_with("valid JSON of the wrong shape"));
    assert!(json_error("[1, NaN]")
        .to_string()
        .starts_with("invalid JSON: NaN is not a JSON number"));
    assert!(json_error("-Infinity")
        .to_string()
        .contains("-Infinity is not"));
    assert_eq!(non_finite_token(r#"{"a": "NaN \" Infinity"}"#), None);
}

#[test]
fn an_address_error_names_the_address_keeps_the_kind_and_has_the_cause_as_source() {
    let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
    let err = Error::at_address("connect to", "127.0.0.1:9", refused);
    let Error::Io(io) = &err else { panic!() };
    assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused);
    assert_eq!(err.to_string(), "I/O error: cannot connect to 127.0.0.1:9");
    let chain = err.chain().to_string();
    assert!(chain.ends_with(": connection refused"), "{chain}");
    assert_eq!(chain, Chain(&err).to_string());
}

#[test]
fn error_is_send_sync_static() {
    fn check<T: Send + Sync + 'static + std::error::Error>() {}
    check::<Error>();
}
