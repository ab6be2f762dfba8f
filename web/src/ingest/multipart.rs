//! `multipart/form-data` bodies (RFC 7578), as Pyroscope clients send a
//! pprof profile: parts named `profile`, `prev_profile` and
//! `sample_type_config`.
//!
//! The body is already in memory (its size is limited before), so parts
//! are slices of it. A part's name comes from its `Content-Disposition:
//! form-data; name="…"` header; other headers are not needed.

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    /// The form field's name.
    pub name: String,
    /// The part's content.
    pub body: &'a [u8],
}

/// The boundary of a `multipart/form-data` content type, or `None` for
/// another content type.
pub fn boundary(content_type: &str) -> Option<Result<String, String>> {
    let mut params = content_type.split(';');
    let kind = params.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let boundary = params.find_map(|p| {
        let (key, value) = p.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_string())
    });
    Some(match boundary {
        Some(b) if !b.is_empty() && b.len() <= 70 => Ok(b),
        Some(b) if !b.is_empty() => Err(format!(
            "the multipart boundary is {} characters long; at most 70 are allowed",
            b.len()
        )),
        _ => Err("`Content-Type: multipart/form-data` has no `boundary`".into()),
    })
}

/// The parts of `body`, delimited by `boundary`.
pub fn parse<'a>(boundary: &str, body: &'a [u8]) -> Result<Vec<Part<'a>>, String> {
    let delimiter = format!("--{boundary}").into_bytes();
    let next_delimiter = format!("\r\n--{boundary}").into_bytes();
    let mut at = if body.starts_with(&delimiter) {
        0
    } else {
        find(body, &next_delimiter, 0)
            .map(|i| i + 2)
            .ok_or("the multipart body has no boundary line: is it multipart/form-data?")?
    };
    let mut parts = Vec::new();
    loop {
        at += delimiter.len();
        if body[at..].starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding, then the line break.
        while matches!(body.get(at), Some(b' ' | b'\t')) {
            at += 1;
        }
        if !body[at..].starts_with(b"\r\n") {
            return Err("a multipart boundary line does not end with CRLF".into());
        }
        at += 2;
        let end = find(body, &next_delimiter, at)
            .ok_or("the multipart body ends before its closing boundary")?;
        parts.push(part(&body[at..end])?);
        at = end + 2;
    }
}

/// One part: headers, an empty line, the content.
fn part(raw: &[u8]) -> Result<Part<'_>, String> {
    let (head, body) = if raw.starts_with(b"\r\n") {
        (&raw[..0], &raw[2..])
    } else {
        let split = find(raw, b"\r\n\r\n", 0)
            .ok_or("a multipart part has no empty line after its headers")?;
        (&raw[..split], &raw[split + 4..])
    };
    let head = std::str::from_utf8(head).map_err(|_| "multipart part headers are not UTF-8")?;
    let name = head
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .filter(|(key, _)| key.trim().eq_ignore_ascii_case("content-disposition"))
        .find_map(|(_, value)| disposition_name(value))
        .ok_or("a multipart part has no `Content-Disposition: form-data; name=\"…\"`")?;
    Ok(Part { name, body })
}

/// The `name` parameter of a `Content-Disposition` value, quoted or not.
fn disposition_name(value: &str) -> Option<String> {
    let mut rest = value;
    loop {
        let semi = rest.find(';')?;
        rest = rest[semi + 1..].trim_start();
        let key_is_name = rest
            .get(..5)
            .is_some_and(|k| k.eq_ignore_ascii_case("name="));
        let Some(after) = rest.get(5..).filter(|_| key_is_name) else {
            // Skip this parameter, minding quoted values.
            if let Some(eq) = rest.find('=') {
                if rest[eq + 1..].starts_with('"') {
                    let close = rest[eq + 2..].find('"')?;
                    rest = &rest[eq + 2 + close + 1..];
                }
            }
            continue;
        };
        return Some(match after.strip_prefix('"') {
            Some(quoted) => quoted[..quoted.find('"')?].to_string(),
            None => after.split(';').next().unwrap_or("").trim().to_string(),
        });
    }
}

/// The first index of `needle` in `haystack` at or after `from`.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut at = from;
    while at + needle.len() <= haystack.len() {
        let i = haystack[at..=haystack.len() - needle.len()]
            .iter()
            .position(|&b| b == first)?;
        if haystack[at + i..].starts_with(needle) {
            return Some(at + i);
        }
        at += i + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=XyZ";

    fn body(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = b"preamble\r\n".to_vec();
        for (name, content) in parts {
            out.extend_from_slice(
                format!(
                    "--XyZ\r\nContent-Disposition: form-data; filename=\"a;b.pprof\"; name=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            out.extend_from_slice(content);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--XyZ--\r\n");
        out
    }

    #[test]
    fn parts_by_name() {
        let boundary = boundary(CT).unwrap().unwrap();
        assert_eq!(boundary, "XyZ");
        let data = body(&[
            ("profile", b"\x1f\x8b\r\n--Xy binary"),
            ("sample_type_config", b"{}"),
        ]);
        let parts = parse(&boundary, &data).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "profile");
        assert_eq!(parts[0].body, b"\x1f\x8b\r\n--Xy binary");
        assert_eq!(parts[1].name, "sample_type_config");
        assert_eq!(parts[1].body, b"{}");
    }

    #[test]
    fn the_name_parameter_is_case_insensitive() {
        let data =
            b"--XyZ\r\nContent-Disposition: form-data; NAME=\"profile\"\r\n\r\nabc\r\n--XyZ--";
        assert_eq!(parse("XyZ", data).unwrap()[0].name, "profile");
    }

    #[test]
    fn boundaries_in_content_types() {
        assert_eq!(boundary("text/plain"), None);
        assert_eq!(
            boundary("Multipart/Form-Data; charset=x; boundary=\"a b\"").unwrap(),
            Ok("a b".into())
        );
        assert!(boundary("multipart/form-data").unwrap().is_err());
        assert!(
            boundary(&format!("multipart/form-data; boundary={}", "x".repeat(71)))
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn broken_bodies_are_errors() {
        let data = body(&[("profile", b"abc")]);
        let cut = &data[..data.len() - 12];
        assert!(parse("XyZ", cut)
            .unwrap_err()
            .contains("before its closing boundary"));
        assert!(parse("other", &data)
            .unwrap_err()
            .contains("no boundary line"));
        let no_name = b"--XyZ\r\nContent-Type: x\r\n\r\nabc\r\n--XyZ--";
        assert!(parse("XyZ", no_name)
            .unwrap_err()
            .contains("Content-Disposition"));
        let no_blank = b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n--XyZ--";
        assert!(parse("XyZ", no_blank).is_err());
        assert!(parse("XyZ", b"--XyZ junk").is_err());
        assert!(parse("XyZ", b"").is_err());
        assert!(parse("XyZ", b"--XyZ").is_err());
    }
}
