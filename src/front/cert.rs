//! What the report says of a route's certificate: the SHA-256 of its first certificate
//! (the leaf, as `openssl x509 -fingerprint -sha256` shows it) and when it expires, read
//! from the PEM with a minimal DER walk (no private key is ever read here).

use sha2::{Digest as _, Sha256};

/// `(SHA-256 fingerprint as hex, notAfter as RFC 3339)` of the first certificate in `pem`.
///
/// # Errors
/// No certificate in the text, or one that does not parse.
pub fn fingerprint_and_expiry(pem: &str) -> Result<(String, String), String> {
    let der = first_der(pem)?;
    let fingerprint = crate::digest::hex(&Sha256::digest(&der));
    Ok((fingerprint, not_after(&der)?))
}

/// The DER bytes of the first `CERTIFICATE` block.
fn first_der(pem: &str) -> Result<Vec<u8>, String> {
    let begin = "-----BEGIN CERTIFICATE-----";
    let start = pem.find(begin).ok_or("no certificate in the PEM text")? + begin.len();
    let end = pem[start..]
        .find("-----END CERTIFICATE-----")
        .ok_or("a certificate without its END line")?;
    let b64: String = pem[start..start + end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64_decode(&b64).ok_or_else(|| "the certificate is not base64".to_string())
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let bytes = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in bytes {
        acc = (acc << 6) | u32::from(val(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// One DER element at `at`: (tag, content start, content end).
fn element(der: &[u8], at: usize) -> Result<(u8, usize, usize), String> {
    let bad = || "the certificate's DER does not parse".to_string();
    let tag = *der.get(at).ok_or_else(bad)?;
    let first = *der.get(at + 1).ok_or_else(bad)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(bad());
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*der.get(at + 2 + i).ok_or_else(bad)?);
        }
        (len, 2 + n)
    };
    let start = at + header;
    let end = start
        .checked_add(len)
        .filter(|e| *e <= der.len())
        .ok_or_else(bad)?;
    Ok((tag, start, end))
}

/// The certificate's `notAfter`, as RFC 3339.
fn not_after(der: &[u8]) -> Result<String, String> {
    let (_, cert, _) = element(der, 0)?; // Certificate SEQUENCE
    let (_, tbs, _) = element(der, cert)?; // TBSCertificate SEQUENCE
    let mut at = tbs;
    let (tag, _, end) = element(der, at)?;
    if tag == 0xa0 {
        at = end; // [0] version
    }
    for _ in 0..3 {
        at = element(der, at)?.2; // serialNumber, signature, issuer
    }
    let (_, validity, _) = element(der, at)?;
    let not_before_end = element(der, validity)?.2;
    let (tag, s, e) = element(der, not_before_end)?;
    let text = std::str::from_utf8(&der[s..e]).map_err(|_| "a time that is not text")?;
    let full = match tag {
        0x17 => {
            // UTCTime: YY < 50 is 20YY.
            let yy: u32 = text
                .get(..2)
                .and_then(|y| y.parse().ok())
                .ok_or("a bad UTCTime")?;
            format!("{}{text}", if yy < 50 { "20" } else { "19" })
        }
        0x18 => text.to_string(),
        _ => return Err("a validity without a time".into()),
    };
    let d = full.as_bytes();
    if d.len() < 15 || !d[..14].iter().all(u8::is_ascii_digit) {
        return Err(format!("a time `{full}` that does not read"));
    }
    Ok(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[0..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_certificate_gives_its_fingerprint_and_expiry() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (key, crt) = (dir.path().join("k.pem"), dir.path().join("c.pem"));
        let made = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args([
                "-nodes",
                "-days",
                "30",
                "-subj",
                "/CN=izin.kota.go.id",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&crt)
            .output();
        let Ok(made) = made else {
            eprintln!("skipped: no openssl");
            return;
        };
        assert!(made.status.success());
        let pem = std::fs::read_to_string(&crt).unwrap_or_default();
        let (fp, expiry) = fingerprint_and_expiry(&pem).unwrap_or_else(|e| panic!("{e}"));
        let shown = std::process::Command::new("openssl")
            .args([
                "x509",
                "-noout",
                "-fingerprint",
                "-sha256",
                "-enddate",
                "-dateopt",
                "iso_8601",
                "-in",
            ])
            .arg(&crt)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let shown = String::from_utf8_lossy(&shown.stdout).to_string();
        let want_fp = shown
            .lines()
            .find_map(|l| {
                l.split_once("Fingerprint=")
                    .map(|(_, f)| f.replace(':', "").to_lowercase())
            })
            .unwrap_or_default();
        assert_eq!(fp, want_fp, "{shown}");
        let want_end = shown
            .lines()
            .find_map(|l| l.strip_prefix("notAfter="))
            .unwrap_or_default()
            .replace(' ', "T");
        assert_eq!(expiry, want_end, "{shown}");
        assert!(fingerprint_and_expiry("no pem").is_err());
    }
}
