//! Redis's `sdssplitargs`: splits a line into arguments with shell-like quoting.
//!
//! Used for inline commands and for config files. Double quotes support `\n \r \t \b \a \\ \"`
//! and `\xHH`; single quotes support `\'`; a closing quote must be followed by a space or the
//! end of the line; a NUL byte ends the line (the C original works on C strings).

/// The line has an unterminated quote, or a closing quote followed by a non-space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitError;

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Splits `line` into arguments. An empty or all-space line gives no arguments.
pub fn split_args(line: &[u8]) -> Result<Vec<Vec<u8>>, SplitError> {
    let end = line.iter().position(|&b| b == 0).unwrap_or(line.len());
    let line = &line[..end];
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while p < line.len() && is_c_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Ok(args);
        }
        let mut current = Vec::new();
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            let c = at(p);
            if in_dq {
                if c == b'\\' && at(p + 1) == b'x' {
                    if let (Some(h), Some(l)) = (hex_val(at(p + 2)), hex_val(at(p + 3))) {
                        current.push(h * 16 + l);
                        p += 4;
                        continue;
                    }
                }
                if c == b'\\' && at(p + 1) != 0 {
                    current.push(match at(p + 1) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                    p += 2;
                    continue;
                }
                if c == b'"' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return Err(SplitError);
                    }
                    p += 1;
                    break;
                }
                if c == 0 {
                    return Err(SplitError);
                }
                current.push(c);
            } else if in_sq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    current.push(b'\'');
                    p += 2;
                    continue;
                }
                if c == b'\'' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return Err(SplitError);
                    }
                    p += 1;
                    break;
                }
                if c == 0 {
                    return Err(SplitError);
                }
                current.push(c);
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    _ => current.push(c),
                }
            }
            p += 1;
        }
        args.push(current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Result<Vec<String>, SplitError> {
        split_args(s.as_bytes()).map(|v| v.into_iter().map(|a| String::from_utf8_lossy(&a).into_owned()).collect())
    }

    #[test]
    fn quoting() {
        assert_eq!(split("  a  b ").unwrap(), vec!["a", "b"]);
        assert_eq!(split(r#""a\x41\n" 'it\'s'"#).unwrap(), vec!["aA\n", "it's"]);
        assert_eq!(split(r#"a"b c"d"#), Err(SplitError));
        assert_eq!(split(r#"a"b c" d"#).unwrap(), vec!["ab c", "d"]);
        assert_eq!(split(r#""abc"#), Err(SplitError));
        assert_eq!(split("'abc"), Err(SplitError));
        assert_eq!(split(r#""\xzz""#).unwrap(), vec!["xzz"]);
        assert_eq!(split("").unwrap(), Vec::<String>::new());
        assert_eq!(split("\"\"").unwrap(), vec![""]);
    }
}
