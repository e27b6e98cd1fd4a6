//! The discovery script's output cut into sections: `NONCE KIND HEX` marker lines, each
//! followed by its content up to the next marker.
//!
//! Invariant: what the vendor host sent is data. A marker is recognised only at the start
//! of a line and only with the run's nonce (random, sent on the command line of the
//! script, so a file written before the run cannot hold it); a section's argument is
//! hex-decoded (a path with a space, a quote or a newline stays whole) and shown lossily
//! as UTF-8; nothing of it is ever evaluated.

/// One section of the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// What it is: `host`, `apache`, `nginx`, `fpm`, `unit`, `dir`, `conf`, …
    pub kind: String,
    /// Its argument (a path), decoded; empty for none.
    pub arg: String,
    /// The content.
    pub body: String,
}

/// The sections of `out`, in order. Text before the first marker is dropped.
pub fn split(nonce: &str, out: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let prefix = format!("{nonce} ");
    let mut current: Option<Section> = None;
    for line in out.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix(&prefix) {
            let rest = rest.trim_end_matches('\n');
            let (kind, hex) = rest.split_once(' ').unwrap_or((rest, ""));
            if !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_lowercase()) {
                if let Some(mut s) = current.take() {
                    trim_marker_newline(&mut s.body);
                    sections.push(s);
                }
                current = Some(Section {
                    kind: kind.to_string(),
                    arg: unhex(hex.trim()),
                    body: String::new(),
                });
                continue;
            }
        }
        if let Some(s) = current.as_mut() {
            s.body.push_str(line);
        }
    }
    if let Some(mut s) = current {
        trim_marker_newline(&mut s.body);
        sections.push(s);
    }
    sections
}

/// The newline that each marker line starts with belongs to the marker, not the content.
fn trim_marker_newline(body: &mut String) {
    if body.ends_with('\n') {
        body.pop();
    }
}

/// `hex` decoded, lossily as UTF-8; what is not hex is dropped.
pub(super) fn unhex(hex: &str) -> String {
    let bytes: Vec<u8> = hex
        .as_bytes()
        .chunks(2)
        .filter_map(|p| {
            let s = std::str::from_utf8(p).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keep_hostile_content_as_data() {
        // a file that pretends to hold a marker with another nonce, and a path with a newline
        let out =
            "junk\n\nN1 host \nhostname vm\n\nN1 conf 2f612f620a63\nX1 dir 2f\nline\n\nN1 end \n";
        let s = split("N1", out);
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(s[0].kind, "host");
        assert_eq!(s[0].body, "hostname vm\n");
        assert_eq!(s[1].arg, "/a/b\nc");
        assert_eq!(s[1].body, "X1 dir 2f\nline\n");
        assert_eq!(s[2].kind, "end");
    }
}
