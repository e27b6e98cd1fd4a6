//! Search and replace that keeps PHP-serialized values valid.
//!
//! WordPress (and many PHP apps) store arrays and objects as PHP's `serialize()` text,
//! where each string carries its length in bytes: `s:22:"http://old.example/";`. A plain
//! replace of a URL of another length breaks the value, and PHP then reads it as `false`
//! (widgets, theme settings and plugin options silently gone). Here a value that parses as
//! serialized data is rewritten token by token: each string's contents are replaced (and
//! themselves parsed again, for data serialized twice) and its length recomputed; other
//! tokens are copied byte for byte. A value that does not parse is replaced as plain text.

/// `value` with every `from` replaced by `to`; `None` when nothing changed.
pub fn replace(value: &[u8], from: &[u8], to: &[u8]) -> Option<Vec<u8>> {
    if from.is_empty() || memchr::memmem::find(value, from).is_none() {
        return None;
    }
    let out = replace_any(value, from, to, 0);
    (out != value).then_some(out)
}

/// The deepest nesting of serialized data inside strings that is followed.
const MAX_DEPTH: usize = 8;

fn replace_any(value: &[u8], from: &[u8], to: &[u8], depth: usize) -> Vec<u8> {
    if depth < MAX_DEPTH && looks_serialized(value) {
        let mut p = Parser {
            s: value,
            at: 0,
            out: Vec::with_capacity(value.len()),
            from,
            to,
            depth,
        };
        if p.value(0).is_some() && p.at == value.len() {
            return p.out;
        }
    }
    plain(value, from, to)
}

fn plain(value: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = memchr::memmem::find(rest, from) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(to);
        rest = &rest[i + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// A cheap first look: `a:`, `O:`, `s:`, `i:`, `b:`, `d:` or `N;` at the start.
fn looks_serialized(v: &[u8]) -> bool {
    matches!(
        v,
        [
            b'a' | b'O' | b's' | b'i' | b'b' | b'd' | b'C' | b'E',
            b':',
            ..
        ] | [b'N', b';']
    )
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    out: Vec<u8>,
    from: &'a [u8],
    to: &'a [u8],
    depth: usize,
}

impl Parser<'_> {
    fn byte(&mut self, b: u8) -> Option<()> {
        (self.s.get(self.at) == Some(&b)).then(|| {
            self.out.push(b);
            self.at += 1;
        })
    }

    /// Digits (with an optional minus), copied; their value.
    fn number(&mut self) -> Option<usize> {
        let start = self.at;
        if self.s.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        while self.s.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.at]).ok()?;
        let n = text.trim_start_matches('-').parse().ok()?;
        self.out.extend_from_slice(text.as_bytes());
        Some(n)
    }

    /// `N:"<N bytes>"`, the bytes copied as they are (class names).
    fn raw_string(&mut self) -> Option<()> {
        let n = self.number()?;
        self.byte(b':')?;
        self.byte(b'"')?;
        let bytes = self.s.get(self.at..self.at + n)?;
        self.out.extend_from_slice(bytes);
        self.at += n;
        self.byte(b'"')
    }

    fn value(&mut self, level: usize) -> Option<()> {
        if level > 512 {
            return None;
        }
        let t = *self.s.get(self.at)?;
        self.out.push(t);
        self.at += 1;
        match t {
            b'N' => self.byte(b';'),
            b'b' | b'i' | b'd' | b'r' | b'R' => {
                self.byte(b':')?;
                let end = self.s[self.at..].iter().position(|&c| c == b';')?;
                self.out.extend_from_slice(&self.s[self.at..=self.at + end]);
                self.at += end + 1;
                Some(())
            }
            b's' => {
                self.out.pop();
                let save = self.out.len();
                self.at += 1; // ':'
                if self.s.get(self.at - 1) != Some(&b':') {
                    return None;
                }
                let start = self.at;
                while self.s.get(self.at).is_some_and(u8::is_ascii_digit) {
                    self.at += 1;
                }
                let n: usize = std::str::from_utf8(&self.s[start..self.at])
                    .ok()?
                    .parse()
                    .ok()?;
                if self.s.get(self.at..self.at + 2) != Some(b":\"") {
                    return None;
                }
                self.at += 2;
                let body = self.s.get(self.at..self.at + n)?;
                self.at += n;
                if self.s.get(self.at..self.at + 2) != Some(b"\";") {
                    return None;
                }
                self.at += 2;
                let body = if memchr::memmem::find(body, self.from).is_some() {
                    replace_any(body, self.from, self.to, self.depth + 1)
                } else {
                    body.to_vec()
                };
                self.out.truncate(save);
                self.out
                    .extend_from_slice(format!("s:{}:\"", body.len()).as_bytes());
                self.out.extend_from_slice(&body);
                self.out.extend_from_slice(b"\";");
                Some(())
            }
            b'a' => {
                self.byte(b':')?;
                let n = self.number()?;
                self.byte(b':')?;
                self.byte(b'{')?;
                for _ in 0..n {
                    self.value(level + 1)?; // key
                    self.value(level + 1)?; // value
                }
                self.byte(b'}')
            }
            b'O' => {
                self.byte(b':')?;
                self.raw_string()?;
                self.byte(b':')?;
                let n = self.number()?;
                self.byte(b':')?;
                self.byte(b'{')?;
                for _ in 0..n {
                    self.value(level + 1)?;
                    self.value(level + 1)?;
                }
                self.byte(b'}')
            }
            b'E' => {
                self.byte(b':')?;
                self.raw_string()?;
                self.byte(b';')
            }
            // `C:` (a class's own format) and anything else: not rewritten token by token.
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: &str) -> String {
        String::from_utf8(
            replace(
                v.as_bytes(),
                b"http://old.example",
                b"https://izin.kota.go.id",
            )
            .unwrap_or_else(|| v.as_bytes().to_vec()),
        )
        .expect("utf-8")
    }

    #[test]
    fn plain_text_is_replaced_everywhere() {
        assert_eq!(
            r("see http://old.example/a and http://old.example/b"),
            "see https://izin.kota.go.id/a and https://izin.kota.go.id/b"
        );
        assert!(replace(b"nothing here", b"http://old.example", b"x").is_none());
    }

    #[test]
    fn serialized_strings_get_their_new_length() {
        let v = r#"a:2:{s:4:"home";s:22:"http://old.example/wp/";s:5:"count";i:3;}"#;
        assert_eq!(
            r(v),
            r#"a:2:{s:4:"home";s:27:"https://izin.kota.go.id/wp/";s:5:"count";i:3;}"#
        );
    }

    #[test]
    fn objects_nested_and_twice_serialized_values_stay_valid() {
        let inner = r#"a:1:{s:3:"url";s:18:"http://old.example";}"#;
        let v = format!(
            r#"O:8:"stdClass":2:{{s:4:"data";s:{}:"{inner}";s:4:"list";a:1:{{i:0;s:20:"http://old.example/x";}}}}"#,
            inner.len()
        );
        let got = r(&v);
        let new_inner = r#"a:1:{s:3:"url";s:23:"https://izin.kota.go.id";}"#;
        assert_eq!(
            got,
            format!(
                r#"O:8:"stdClass":2:{{s:4:"data";s:{}:"{new_inner}";s:4:"list";a:1:{{i:0;s:25:"https://izin.kota.go.id/x";}}}}"#,
                new_inner.len()
            )
        );
    }

    #[test]
    fn multibyte_strings_count_bytes_and_broken_data_is_replaced_as_text() {
        let v = "a:1:{i:0;s:26:\"http://old.example/kota é\";}";
        assert_eq!(r(v), "a:1:{i:0;s:31:\"https://izin.kota.go.id/kota é\";}");
        // A length that does not match: not serialized data; plain replace.
        let broken = r#"a:1:{i:0;s:99:"http://old.example";}"#;
        assert_eq!(r(broken), r#"a:1:{i:0;s:99:"https://izin.kota.go.id";}"#);
    }
}
