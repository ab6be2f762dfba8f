//! Demangling of C++ (Itanium) and Rust symbol names. Only names with a
//! mangling prefix are demangled: a C function named `a` or `b` would
//! otherwise read as a C++ type code (`signed char`, `bool`).

/// `name` demangled when it is a mangled C++ or Rust name, else as it is.
pub(crate) fn demangle(name: &str) -> String {
    if name.starts_with("_R") || is_legacy_rust(name) {
        // Without the hash.
        if let Ok(rust) = rustc_demangle::try_demangle(name) {
            return format!("{rust:#}");
        }
    }
    if name.starts_with("_Z") {
        if let Some(cpp) = cpp_demangle::Symbol::new(name)
            .ok()
            .and_then(|symbol| symbol.demangle().ok())
        {
            return cpp;
        }
    }
    name.to_owned()
}

/// Rust's legacy mangling: `_ZN…17h<16 hex digits>E`.
fn is_legacy_rust(name: &str) -> bool {
    let Some(body) = name.strip_prefix("_ZN").and_then(|n| n.strip_suffix('E')) else {
        return false;
    };
    let body = body.as_bytes();
    body.len() >= 19 && {
        let (rest, hash) = body.split_at(body.len() - 16);
        rest.ends_with(b"17h") && hash.iter().all(u8::is_ascii_hexdigit)
    }
}

#[cfg(test)]
mod tests {
    use super::demangle;

    #[test]
    fn only_mangled_names_change() {
        for plain in ["a", "b", "c", "main", "Dv", "_start", "__libc_start_main"] {
            assert_eq!(demangle(plain), plain);
        }
        assert_eq!(demangle("_ZN4work4spinEv"), "work::spin()");
        assert_eq!(demangle("_Znwm"), "operator new(unsigned long)");
        assert_eq!(
            demangle("_ZN4core3ptr13drop_in_place17h0123456789abcdefE"),
            "core::ptr::drop_in_place"
        );
        assert_eq!(demangle("_RNvCs1234_7mycrate3foo"), "mycrate::foo");
        // Not a valid mangling: kept.
        assert_eq!(demangle("_Zfoo"), "_Zfoo");
    }
}
