//! `ImportKeyPair` tests: accepted formats, fingerprints against values computed by
//! OpenSSH/OpenSSL (fixtures made with `ssh-keygen`, plus live runs when the tools
//! are installed), and every rejection path.

mod common;

use base64::Engine as _;
use common::{aws_sha256_from_ssh_keygen, key_fields, openssl_digest, p, run_ok, TempDir};
use gureum_keys::{create, import, ImportedKeyType, KeyError, KeyFormat, KeyType};
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

const RSA3072_PUB: &str = include_str!("fixtures/rsa3072.pub");
/// `ssh-keygen -e -m PKCS8 -f rsa3072.pub | openssl pkey -pubin -outform DER | openssl md5 -c`
const RSA3072_MD5: &str = "aa:8c:cd:64:72:4a:f3:d4:41:c4:f1:4c:a8:77:4e:8b";
const RSA1024_PUB: &str = include_str!("fixtures/rsa1024.pub");
const RSA1024_MD5: &str = "91:96:8e:e8:b9:20:be:b4:40:00:ef:45:a7:12:f7:98";
const ED25519_PUB: &str = include_str!("fixtures/ed.pub");
/// `ssh-keygen -l -E sha256 -f ed.pub` printed `SHA256:xk4V...ZhI`.
const ED25519_FP: &str = "xk4ViLlezdPUrQcpsPvx9pHAKnmo8Ddkc+A0UxhzZhI=";

fn assert_invalid(material: &[u8], what: &str) {
    let err = import(material).expect_err(what);
    assert_eq!(err.code, "InvalidKey.Format", "{what}");
    assert_eq!(
        err.message, "Key is not in valid OpenSSH public key format",
        "{what}"
    );
}

// ------------------------------------------------------------------- RSA

#[test]
fn rsa_openssh_line_uses_md5_of_spki() {
    let key = import(RSA3072_PUB.as_bytes()).unwrap();
    assert_eq!(key.key_type, ImportedKeyType::Rsa);
    assert_eq!(key.key_type.as_str(), "rsa");
    assert_eq!(key.fingerprint, RSA3072_MD5);
    assert_eq!(key.public_key_openssh, key_fields(RSA3072_PUB));
    // AWS reports the key-pair name in place of the uploaded comment.
    assert_eq!(
        key.described_public_key("imported"),
        format!("{} imported", key_fields(RSA3072_PUB))
    );
}

#[test]
fn rsa_every_documented_format_gives_the_same_key() {
    let expected = import(RSA3072_PUB.as_bytes()).unwrap();
    let der_b64 = include_str!("fixtures/rsa3072.der.b64").trim();
    let raw_der = B64.decode(der_b64).unwrap();
    let wrapped_crlf: String = der_b64
        .as_bytes()
        .chunks(64)
        .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
        .collect();
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        (
            "RFC 4716",
            include_bytes!("fixtures/rsa3072.rfc4716").to_vec(),
        ),
        (
            "PEM SPKI",
            include_bytes!("fixtures/rsa3072.spki.pem").to_vec(),
        ),
        (
            "PEM PKCS#1",
            include_bytes!("fixtures/rsa3072.pkcs1.pem").to_vec(),
        ),
        ("base64 DER", der_b64.as_bytes().to_vec()),
        ("base64 DER, wrapped CRLF", wrapped_crlf.into_bytes()),
        ("raw DER", raw_der),
        ("no comment", key_fields(RSA3072_PUB).into_bytes()),
        (
            "CRLF and surrounding blank lines",
            format!("\r\n{}\r\n\r\n", RSA3072_PUB.trim()).into_bytes(),
        ),
    ];
    for (what, material) in inputs {
        let key = import(&material).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(key, expected, "{what}");
    }
}

#[test]
fn rfc4716_with_continued_headers() {
    let body: Vec<&str> = include_str!("fixtures/rsa3072.rfc4716")
        .lines()
        .filter(|l| !l.starts_with("----") && !l.contains(':'))
        .collect();
    let text = format!(
        "---- BEGIN SSH2 PUBLIC KEY ----\nSubject: alice\nComment: \"a long comment \\\nthat continues: here\"\n{}\n---- END SSH2 PUBLIC KEY ----\n",
        body.join("\n")
    );
    assert_eq!(import(text.as_bytes()).unwrap().fingerprint, RSA3072_MD5);
}

#[test]
fn rsa_1024_is_the_minimum() {
    let key = import(RSA1024_PUB.as_bytes()).unwrap();
    assert_eq!(key.fingerprint, RSA1024_MD5);

    // 512 bits: refused. Built by hand because ssh-keygen no longer makes them.
    let small = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 512).unwrap();
    let line = ssh_key::PublicKey::from(ssh_key::public::KeyData::Rsa(
        ssh_key::public::RsaPublicKey {
            e: ssh_key::Mpint::from_positive_bytes(&small.e().to_bytes_be()).unwrap(),
            n: ssh_key::Mpint::from_positive_bytes(&small.n().to_bytes_be()).unwrap(),
        },
    ))
    .to_openssh()
    .unwrap();
    assert!(line.starts_with("ssh-rsa "));
    assert_invalid(line.as_bytes(), "512-bit RSA");
    let spki = rsa::pkcs8::EncodePublicKey::to_public_key_pem(
        &small.to_public_key(),
        rsa::pkcs8::LineEnding::LF,
    )
    .unwrap();
    assert_invalid(spki.as_bytes(), "512-bit RSA as PEM");
}

#[test]
fn imported_rsa_matches_openssl_md5_live() {
    let dir = TempDir::new();
    let key = dir.path("id_rsa");
    let Some(_) = run_ok(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "rsa",
            "-b",
            "2048",
            "-N",
            "",
            "-C",
            "live",
            "-f",
            p(&key),
        ],
    ) else {
        return;
    };
    let public = std::fs::read_to_string(dir.path("id_rsa.pub")).unwrap();
    let imported = import(public.as_bytes()).unwrap();

    // The user guide's command for keys made by OpenSSH 7.8+:
    // ssh-keygen -ef key -m PEM | openssl rsa -RSAPublicKey_in -outform DER | openssl md5 -c
    let pkcs1 = run_ok("ssh-keygen", &["-e", "-m", "PEM", "-f", p(&key)]).unwrap();
    let pkcs1_path = dir.write("pkcs1.pem", &pkcs1);
    let der = dir.path("spki.der");
    let Some(_) = run_ok(
        "openssl",
        &[
            "rsa",
            "-RSAPublicKey_in",
            "-in",
            p(&pkcs1_path),
            "-outform",
            "DER",
            "-out",
            p(&der),
        ],
    ) else {
        return;
    };
    let md5 = run_ok("openssl", &["md5", "-c", p(&der)]).unwrap();
    assert_eq!(imported.fingerprint, openssl_digest(&md5));

    // The same key in the other formats AWS documents.
    let rfc4716 = run_ok("ssh-keygen", &["-e", "-f", p(&key)]).unwrap();
    assert_eq!(import(rfc4716.as_bytes()).unwrap(), imported);
    let spki_pem = run_ok("ssh-keygen", &["-e", "-m", "PKCS8", "-f", p(&key)]).unwrap();
    assert_eq!(import(spki_pem.as_bytes()).unwrap(), imported);
    let raw = std::fs::read(&der).unwrap();
    assert_eq!(import(B64.encode(&raw).as_bytes()).unwrap(), imported);
}

#[test]
fn created_rsa_reimported_gets_an_md5_fingerprint() {
    // The user guide's note: a created RSA key re-imported elsewhere shows a
    // different (MD5) fingerprint than the original (SHA-1) one.
    let created = create(KeyType::Rsa, KeyFormat::Pem, "orig").unwrap();
    let imported = import(created.public_key_openssh.as_bytes()).unwrap();
    assert_ne!(imported.fingerprint, created.fingerprint);
    assert_eq!(imported.fingerprint.len(), 16 * 3 - 1);
    assert_eq!(
        imported.described_public_key("orig"),
        created.public_key_openssh
    );
}

// --------------------------------------------------------------- ED25519

#[test]
fn ed25519_uses_padded_base64_sha256() {
    let key = import(ED25519_PUB.as_bytes()).unwrap();
    assert_eq!(key.key_type, ImportedKeyType::Ed25519);
    assert_eq!(key.key_type.as_str(), "ed25519");
    assert_eq!(key.fingerprint, ED25519_FP);
    assert_eq!(key.public_key_openssh, key_fields(ED25519_PUB));
    let rfc4716 = import(include_bytes!("fixtures/ed.rfc4716")).unwrap();
    assert_eq!(rfc4716, key);
}

#[test]
fn ed25519_created_and_imported_fingerprints_agree() {
    // User guide: ED25519 fingerprints are the same whether created or imported.
    let created = create(KeyType::Ed25519, KeyFormat::Pem, "same").unwrap();
    let imported = import(created.public_key_openssh.as_bytes()).unwrap();
    assert_eq!(imported.fingerprint, created.fingerprint);
    assert_eq!(
        imported.described_public_key("same"),
        created.public_key_openssh
    );
}

#[test]
fn imported_ed25519_matches_ssh_keygen_live() {
    let dir = TempDir::new();
    let key = dir.path("id_ed25519");
    let Some(_) = run_ok(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-C", "live", "-f", p(&key)],
    ) else {
        return;
    };
    let public = std::fs::read_to_string(dir.path("id_ed25519.pub")).unwrap();
    let imported = import(public.as_bytes()).unwrap();
    let listing = run_ok("ssh-keygen", &["-l", "-E", "sha256", "-f", p(&key)]).unwrap();
    assert_eq!(imported.fingerprint, aws_sha256_from_ssh_keygen(&listing));
}

#[test]
fn ed25519_rejects_a_point_off_the_curve() {
    // y = 2 has no x on edwards25519, so this 32-byte string is not a public key.
    let mut point = [0u8; 32];
    point[0] = 2;
    let mut blob = Vec::new();
    for field in [b"ssh-ed25519".as_slice(), &point] {
        blob.extend_from_slice(&(field.len() as u32).to_be_bytes());
        blob.extend_from_slice(field);
    }
    assert!(ed25519_dalek::VerifyingKey::from_bytes(&point).is_err());
    let line = format!("ssh-ed25519 {}", B64.encode(&blob));
    assert_invalid(line.as_bytes(), "ed25519 point off the curve");
}

// ----------------------------------------------------------------- ECDSA

#[test]
fn ecdsa_is_accepted_with_sha256_fingerprints() {
    // Fingerprints printed by `ssh-keygen -l -E sha256 -f ecNNN.pub`.
    let cases = [
        (
            include_str!("fixtures/ec256.pub"),
            "ecdsa-sha2-nistp256",
            "deXL45WCK7SDtuo1EUd2w2ognJsg1B7mycurCiBPaxc=",
        ),
        (
            include_str!("fixtures/ec384.pub"),
            "ecdsa-sha2-nistp384",
            "mmUa0nH0WmRA6vh1TULTrMK5VCefmZzplWxzKCpf0lM=",
        ),
        (
            include_str!("fixtures/ec521.pub"),
            "ecdsa-sha2-nistp521",
            "NEP8uTiY58bAkhl5Abd4iTRjKNLv47HYh9jU2Ohn1Go=",
        ),
    ];
    for (line, algorithm, fingerprint) in cases {
        let key = import(line.as_bytes()).unwrap();
        assert_eq!(key.key_type, ImportedKeyType::Ecdsa);
        assert_eq!(key.key_type.as_str(), "ecdsa");
        assert_eq!(key.fingerprint, fingerprint, "{algorithm}");
        assert_eq!(key.public_key_openssh, key_fields(line));
        assert!(key.public_key_openssh.starts_with(algorithm));
    }
}

#[test]
fn ecdsa_rejects_a_point_off_the_curve() {
    let line = include_str!("fixtures/ec256.pub");
    let mut blob = B64.decode(line.split_whitespace().nth(1).unwrap()).unwrap();
    let last = blob.len() - 1;
    blob[last] ^= 0x01; // y changes, (x, y) leaves the curve
    let broken = format!("ecdsa-sha2-nistp256 {}", B64.encode(&blob));
    assert_invalid(broken.as_bytes(), "P-256 point off the curve");
}

// ------------------------------------------------------------- rejections

#[test]
fn rejects_empty_and_garbage() {
    assert_invalid(b"", "empty");
    assert_invalid(b"   \n\t\r\n", "whitespace only");
    assert_invalid(b"hello world", "two words");
    assert_invalid(b"hello", "one word");
    assert_invalid(b"ssh-rsa", "algorithm only");
    assert_invalid(b"ssh-rsa !!!notbase64!!!", "bad base64");
    assert_invalid(&[0xff, 0xfe, 0x00, 0x01], "binary garbage");
    assert_invalid(&[0x30, 0x03, 0x02, 0x01, 0x00], "DER that is no SPKI");
    assert_invalid(b"MIIBIjANBgkq", "truncated base64 DER");
    assert_invalid(
        b"---- BEGIN SSH2 PUBLIC KEY ----\nAAAAB3NzaC1yc2E=\n",
        "RFC 4716 without END line",
    );
    assert_invalid(
        b"-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----",
        "empty PEM",
    );
}

#[test]
fn rejects_truncated_keys() {
    let b64 = RSA3072_PUB.split_whitespace().nth(1).unwrap();
    // Cut on a 4-character boundary (valid base64, short blob) and off it.
    for cut in [b64.len() / 2 / 4 * 4, b64.len() / 2 + 1, b64.len() - 4] {
        let line = format!("ssh-rsa {}", &b64[..cut]);
        assert_invalid(line.as_bytes(), &format!("truncated at {cut}"));
    }
    let ed = ED25519_PUB.split_whitespace().nth(1).unwrap();
    assert_invalid(
        format!("ssh-ed25519 {}", &ed[..40]).as_bytes(),
        "short ed25519",
    );
}

#[test]
fn rejects_trailing_bytes_in_the_blob() {
    let b64 = ED25519_PUB.split_whitespace().nth(1).unwrap();
    let mut blob = B64.decode(b64).unwrap();
    blob.extend_from_slice(&[0, 0, 0, 0]);
    assert_invalid(
        format!("ssh-ed25519 {}", B64.encode(&blob)).as_bytes(),
        "blob with trailing bytes",
    );
}

#[test]
fn rejects_dsa() {
    let dsa = include_str!("fixtures/dsa.pub");
    assert!(dsa.starts_with("ssh-dss "));
    assert_invalid(dsa.as_bytes(), "DSA");
}

#[test]
fn rejects_algorithm_name_not_matching_the_blob() {
    let ed_b64 = ED25519_PUB.split_whitespace().nth(1).unwrap();
    assert_invalid(
        format!("ssh-rsa {ed_b64}").as_bytes(),
        "ssh-rsa label, ed25519 blob",
    );
    let rsa_b64 = RSA3072_PUB.split_whitespace().nth(1).unwrap();
    assert_invalid(
        format!("ssh-ed25519 {rsa_b64}").as_bytes(),
        "ed25519 label, rsa blob",
    );
}

#[test]
fn rejects_more_than_one_key() {
    let two = format!("{}{}", RSA3072_PUB, ED25519_PUB);
    assert_invalid(two.as_bytes(), "two keys");
}

#[test]
fn rejects_authorized_keys_options_and_certificates() {
    let with_options = format!("no-pty,command=\"/bin/true\" {}", RSA3072_PUB);
    assert_invalid(with_options.as_bytes(), "options prefix");
    let fake_cert = format!(
        "ssh-rsa-cert-v01@openssh.com {}",
        RSA3072_PUB.split_whitespace().nth(1).unwrap()
    );
    assert_invalid(fake_cert.as_bytes(), "certificate type");
}

#[test]
fn rejects_private_keys() {
    assert_invalid(include_bytes!("fixtures/created.pem"), "PKCS#1 private key");
    assert_invalid(
        include_bytes!("fixtures/ed25519_private_openssh"),
        "OpenSSH ed25519 private key",
    );
    assert_invalid(
        include_bytes!("fixtures/rsa1024_private_openssh"),
        "OpenSSH RSA private key",
    );
    let pkcs1 = include_str!("fixtures/created.pem");
    let key =
        <rsa::RsaPrivateKey as rsa::pkcs1::DecodeRsaPrivateKey>::from_pkcs1_pem(pkcs1).unwrap();
    let pkcs8_pem = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    assert_invalid(pkcs8_pem.as_bytes(), "PKCS#8 private key PEM");
    let pkcs8_der = key.to_pkcs8_der().unwrap();
    assert_invalid(pkcs8_der.as_bytes(), "PKCS#8 private key raw DER");
    assert_invalid(
        B64.encode(pkcs8_der.as_bytes()).as_bytes(),
        "PKCS#8 private key b64 DER",
    );
    for format in [KeyFormat::Pem, KeyFormat::Ppk] {
        let created = create(KeyType::Ed25519, format, "k").unwrap();
        assert_invalid(created.key_material.as_bytes(), "created private key");
    }
}

#[test]
fn rejects_non_rsa_der() {
    // Ed25519 SubjectPublicKeyInfo (RFC 8410): AWS takes DER for RSA only.
    let point = B64
        .decode(ED25519_PUB.split_whitespace().nth(1).unwrap())
        .unwrap()[19..]
        .to_vec();
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(&point);
    assert_eq!(der.len(), 44);
    assert_invalid(&der, "raw Ed25519 SPKI");
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        B64.encode(&der)
    );
    assert_invalid(pem.as_bytes(), "Ed25519 SPKI PEM");
}

#[test]
fn error_renders_code_and_message() {
    let err = import(b"junk").unwrap_err();
    assert_eq!(err, KeyError::invalid_key_format());
    assert_eq!(
        err.to_string(),
        "InvalidKey.Format: Key is not in valid OpenSSH public key format"
    );
}
