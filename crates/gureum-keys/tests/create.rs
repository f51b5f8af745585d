//! `CreateKeyPair` tests: the private key material per type and format, checked
//! against the reference tools where they are installed and against independent
//! re-computations otherwise.

mod common;

use base64::Engine as _;
use common::{aws_sha256_from_ssh_keygen, key_fields, openssl_digest, p, run, run_ok, TempDir};
use gureum_keys::{create, fingerprint, CreatedKey, KeyError, KeyFormat, KeyType};
use hmac::{Hmac, Mac};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::BigUint;
use sha1::{Digest, Sha1};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn public_blob(created: &CreatedKey) -> Vec<u8> {
    let b64 = created
        .public_key_openssh
        .split_whitespace()
        .nth(1)
        .expect("base64 field");
    B64.decode(b64).expect("public key base64")
}

// ---------------------------------------------------------------- RSA + pem

#[test]
fn rsa_pem_is_pkcs1_without_trailing_newline() {
    let created = create(KeyType::Rsa, KeyFormat::Pem, "my-key").unwrap();
    assert_eq!(created.key_type, KeyType::Rsa);
    let material = &created.key_material;
    assert!(material.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    assert!(material.ends_with("\n-----END RSA PRIVATE KEY-----"));
    assert!(!material.contains('\r'));
    let lines: Vec<&str> = material.lines().collect();
    let body = &lines[1..lines.len() - 1];
    assert!(body[..body.len() - 1].iter().all(|l| l.len() == 64));
    assert!(body.last().unwrap().len() <= 64);

    let key = rsa::RsaPrivateKey::from_pkcs1_pem(material).unwrap();
    assert_eq!(key.n().bits(), 2048);
    assert_eq!(key.e(), &BigUint::from(65537u32));
    key.validate().unwrap();

    // Public key line: "ssh-rsa <blob> my-key", blob = string, mpint e, mpint n.
    let fields: Vec<&str> = created.public_key_openssh.split(' ').collect();
    assert_eq!(fields.len(), 3);
    assert_eq!(fields[0], "ssh-rsa");
    assert_eq!(fields[2], "my-key");
    let parsed = ssh_key::PublicKey::from_bytes(&public_blob(&created)).unwrap();
    let rsa_pub = parsed.key_data().rsa().unwrap();
    assert_eq!(
        rsa_pub.n.as_positive_bytes().unwrap(),
        key.n().to_bytes_be().as_slice()
    );

    // Fingerprint: SHA-1 of the DER PKCS#8 private key, colon hex.
    let pkcs8 = key.to_pkcs8_der().unwrap();
    let expected = Sha1::digest(pkcs8.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    assert_eq!(created.fingerprint, expected);
}

#[test]
fn rsa_pem_accepted_by_ssh_keygen_and_fingerprint_matches_openssl() {
    let created = create(KeyType::Rsa, KeyFormat::Pem, "tool-check").unwrap();
    let dir = TempDir::new();
    // Written verbatim: AWS's material has no final newline and OpenSSH must cope.
    let pem = dir.write("k.pem", &created.key_material);

    if let Some(public) = run_ok("ssh-keygen", &["-y", "-f", p(&pem)]) {
        assert_eq!(key_fields(&public), key_fields(&created.public_key_openssh));
    }

    // The user guide's check: openssl pkcs8 -topk8 -nocrypt -outform DER | openssl sha1 -c
    let der = dir.path("k.pk8.der");
    let converted = run_ok(
        "openssl",
        &[
            "pkcs8",
            "-in",
            p(&pem),
            "-inform",
            "PEM",
            "-outform",
            "DER",
            "-topk8",
            "-nocrypt",
            "-out",
            p(&der),
        ],
    );
    if converted.is_some() {
        let digest = run_ok("openssl", &["sha1", "-c", p(&der)]).unwrap();
        assert_eq!(openssl_digest(&digest), created.fingerprint);
    }
}

/// A fixed key, fingerprinted once with `openssl pkcs8 -in created.pem -inform PEM
/// -outform DER -topk8 -nocrypt | openssl sha1 -c`, so the check runs without tools.
#[test]
fn created_rsa_fingerprint_matches_openssl_for_fixed_key() {
    let pem = include_str!("fixtures/created.pem");
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(pem).unwrap();
    let der = key.to_pkcs8_der().unwrap();
    assert_eq!(
        fingerprint::created_rsa(der.as_bytes()),
        "7a:82:cf:1c:7b:61:8e:81:96:16:8b:e7:33:4c:60:4f:9e:81:47:0a"
    );
}

#[test]
fn every_rsa_key_is_fresh() {
    let a = create(KeyType::Rsa, KeyFormat::Pem, "a").unwrap();
    let b = create(KeyType::Rsa, KeyFormat::Pem, "a").unwrap();
    assert_ne!(a.key_material, b.key_material);
    assert_ne!(a.fingerprint, b.fingerprint);
}

// ------------------------------------------------------------ ED25519 + pem

#[test]
fn ed25519_pem_is_openssh_container() {
    let created = create(KeyType::Ed25519, KeyFormat::Pem, "ed-key").unwrap();
    assert_eq!(created.key_type, KeyType::Ed25519);
    let material = &created.key_material;
    assert!(material.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
    assert!(material.ends_with("\n-----END OPENSSH PRIVATE KEY-----\n"));

    let private = ssh_key::PrivateKey::from_openssh(material).unwrap();
    assert!(!private.is_encrypted());
    assert_eq!(private.comment(), "ed-key");
    assert_eq!(
        private.public_key().to_bytes().unwrap(),
        public_blob(&created)
    );
    let keypair = private.key_data().ed25519().unwrap();
    let signing = ed25519_dalek::SigningKey::from_bytes(&keypair.private.to_bytes());
    assert_eq!(signing.verifying_key().to_bytes(), keypair.public.0);

    assert!(created
        .public_key_openssh
        .starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"));
    assert!(created.public_key_openssh.ends_with(" ed-key"));
    // base64 SHA-256 with its padding and no "SHA256:" prefix.
    assert_eq!(created.fingerprint.len(), 44);
    assert!(created.fingerprint.ends_with('='));
    assert!(!created.fingerprint.starts_with("SHA256:"));
}

#[test]
fn ed25519_pem_accepted_by_ssh_keygen_with_matching_fingerprint() {
    let created = create(KeyType::Ed25519, KeyFormat::Pem, "ed-tool").unwrap();
    let dir = TempDir::new();
    let pem = dir.write("k", &created.key_material);

    if let Some(public) = run_ok("ssh-keygen", &["-y", "-f", p(&pem)]) {
        assert_eq!(key_fields(&public), key_fields(&created.public_key_openssh));
    }
    // The user guide's check for ED25519: ssh-keygen -l -f <private key>.
    if let Some(listing) = run_ok("ssh-keygen", &["-l", "-E", "sha256", "-f", p(&pem)]) {
        assert_eq!(aws_sha256_from_ssh_keygen(&listing), created.fingerprint);
        assert!(
            listing.contains("ed-tool"),
            "comment is the key name: {listing}"
        );
    }
}

// --------------------------------------------------------------------- PPK

/// A parsed PPK v2 file, read with nothing from the crate under test.
struct Ppk {
    algorithm: String,
    comment: String,
    public_blob: Vec<u8>,
    private_blob: Vec<u8>,
    mac: String,
}

fn parse_ppk(text: &str) -> Ppk {
    assert!(text.ends_with('\n'));
    assert!(!text.contains('\r'));
    let mut lines = text.lines();
    let mut header = |name: &str| -> String {
        let line = lines.next().unwrap_or_else(|| panic!("missing {name}"));
        line.strip_prefix(&format!("{name}: "))
            .unwrap_or_else(|| panic!("expected {name}: got {line}"))
            .to_string()
    };
    let algorithm = header("PuTTY-User-Key-File-2");
    assert_eq!(header("Encryption"), "none");
    let comment = header("Comment");
    let public_count: usize = header("Public-Lines").parse().unwrap();
    let mut public_b64 = String::new();
    for i in 0..public_count {
        let line = lines.next().unwrap();
        if i + 1 < public_count {
            assert_eq!(line.len(), 64, "public line {i}");
        } else {
            assert!(!line.is_empty() && line.len() <= 64);
        }
        public_b64.push_str(line);
    }
    let mut lines2 = lines;
    let private_header = lines2.next().unwrap();
    let private_count: usize = private_header
        .strip_prefix("Private-Lines: ")
        .unwrap()
        .parse()
        .unwrap();
    let mut private_b64 = String::new();
    for i in 0..private_count {
        let line = lines2.next().unwrap();
        if i + 1 < private_count {
            assert_eq!(line.len(), 64, "private line {i}");
        } else {
            assert!(!line.is_empty() && line.len() <= 64);
        }
        private_b64.push_str(line);
    }
    let mac = lines2
        .next()
        .unwrap()
        .strip_prefix("Private-MAC: ")
        .unwrap()
        .to_string();
    assert!(lines2.next().is_none(), "nothing after Private-MAC");
    Ppk {
        algorithm,
        comment,
        public_blob: B64.decode(public_b64).unwrap(),
        private_blob: B64.decode(private_b64).unwrap(),
        mac,
    }
}

/// PuTTY manual Appendix C, v2: HMAC-SHA-1 keyed with
/// SHA-1("putty-private-key-file-mac-key" || passphrase) over five SSH strings.
fn expected_mac(ppk: &Ppk) -> String {
    fn string(out: &mut Vec<u8>, data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(data);
    }
    let mut data = Vec::new();
    string(&mut data, ppk.algorithm.as_bytes());
    string(&mut data, b"none");
    string(&mut data, ppk.comment.as_bytes());
    string(&mut data, &ppk.public_blob);
    string(&mut data, &ppk.private_blob);
    let key = Sha1::digest(b"putty-private-key-file-mac-key");
    let mut mac = Hmac::<Sha1>::new_from_slice(&key).unwrap();
    mac.update(&data);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Splits consecutive SSH `string`/`mpint` fields.
fn ssh_fields(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut fields = Vec::new();
    while !data.is_empty() {
        let len = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
        fields.push(data[4..4 + len].to_vec());
        data = &data[4 + len..];
    }
    fields
}

#[test]
fn rsa_ppk_structure_mac_and_key_consistency() {
    let created = create(KeyType::Rsa, KeyFormat::Ppk, "putty-rsa").unwrap();
    let ppk = parse_ppk(&created.key_material);
    assert_eq!(ppk.algorithm, "ssh-rsa");
    assert_eq!(ppk.comment, "putty-rsa");
    assert_eq!(ppk.mac.len(), 40);
    assert_eq!(ppk.mac, expected_mac(&ppk));
    assert_eq!(ppk.public_blob, public_blob(&created));

    let public = ssh_fields(&ppk.public_blob);
    assert_eq!(public[0], b"ssh-rsa");
    let e = BigUint::from_bytes_be(&public[1]);
    let n = BigUint::from_bytes_be(&public[2]);
    assert_eq!(n.bits(), 2048);
    let private = ssh_fields(&ppk.private_blob);
    assert_eq!(private.len(), 4, "d, p, q, iqmp");
    let [d, pr, q, iqmp] = [0, 1, 2, 3].map(|i| BigUint::from_bytes_be(&private[i]));
    assert_eq!(&pr * &q, n);
    assert_eq!((&q * &iqmp) % &pr, BigUint::from(1u32), "iqmp = q^-1 mod p");
    // d really inverts e: m^(e·d) = m (mod n).
    let m = BigUint::from(0x1234_5678u32);
    assert_eq!(m.modpow(&e, &n).modpow(&d, &n), m);
    // mpints are minimal and non-negative.
    for field in private.iter().chain(&public[1..]) {
        assert!(field[0] != 0 || field[1] & 0x80 != 0);
        assert_eq!(field[0] & 0x80, 0);
    }

    // Fingerprint is still the created-RSA one (SHA-1 of PKCS#8), whatever the format.
    let key = rsa::RsaPrivateKey::from_components(n, e, d, vec![pr, q]).unwrap();
    let pkcs8 = key.to_pkcs8_der().unwrap();
    assert_eq!(
        created.fingerprint,
        fingerprint::created_rsa(pkcs8.as_bytes())
    );
}

#[test]
fn ed25519_ppk_structure_mac_and_key_consistency() {
    let created = create(KeyType::Ed25519, KeyFormat::Ppk, "putty-ed").unwrap();
    let ppk = parse_ppk(&created.key_material);
    assert_eq!(ppk.algorithm, "ssh-ed25519");
    assert_eq!(ppk.comment, "putty-ed");
    assert_eq!(ppk.mac, expected_mac(&ppk));
    assert_eq!(ppk.public_blob, public_blob(&created));

    let public = ssh_fields(&ppk.public_blob);
    assert_eq!(public[0], b"ssh-ed25519");
    let private = ssh_fields(&ppk.private_blob);
    assert_eq!(private.len(), 1);
    let seed: [u8; 32] = private[0].as_slice().try_into().unwrap();
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    assert_eq!(
        signing.verifying_key().to_bytes().as_slice(),
        public[1].as_slice()
    );
}

#[test]
fn tampered_ppk_fails_the_mac() {
    let created = create(KeyType::Ed25519, KeyFormat::Ppk, "orig").unwrap();
    let mut ppk = parse_ppk(&created.key_material);
    ppk.comment = "other".into();
    assert_ne!(ppk.mac, expected_mac(&ppk));
}

fn check_with_puttygen(created: &CreatedKey) {
    let dir = TempDir::new();
    let ppk = dir.write("k.ppk", &created.key_material);
    let public = dir.path("k.pub");
    let Some(out) = run(
        "puttygen",
        &[p(&ppk), "-O", "public-openssh", "-o", p(&public)],
    ) else {
        return;
    };
    assert!(out.ok, "puttygen rejected the file: {}", out.stderr);
    let line = std::fs::read_to_string(&public).unwrap();
    assert_eq!(key_fields(&line), key_fields(&created.public_key_openssh));

    // Round trip the private half through PuTTY's parser into OpenSSH's.
    let openssh = dir.path("k.openssh");
    let out = run(
        "puttygen",
        &[p(&ppk), "-O", "private-openssh-new", "-o", p(&openssh)],
    )
    .unwrap();
    assert!(out.ok, "puttygen export failed: {}", out.stderr);
    if let Some(derived) = run_ok("ssh-keygen", &["-y", "-f", p(&openssh)]) {
        assert_eq!(
            key_fields(&derived),
            key_fields(&created.public_key_openssh)
        );
    }
}

#[test]
fn rsa_ppk_loads_in_puttygen() {
    check_with_puttygen(&create(KeyType::Rsa, KeyFormat::Ppk, "pg-rsa").unwrap());
}

#[test]
fn ed25519_ppk_loads_in_puttygen() {
    check_with_puttygen(&create(KeyType::Ed25519, KeyFormat::Ppk, "pg-ed").unwrap());
}

// ---------------------------------------------------------------- key names

#[test]
fn key_name_limits() {
    let max = "k".repeat(255);
    let created = create(KeyType::Ed25519, KeyFormat::Ppk, &max).unwrap();
    assert!(created.key_material.contains(&format!("Comment: {max}\n")));
    for bad in [
        "",
        "line\nbreak",
        "tab\there",
        "caf\u{e9}",
        &"k".repeat(256),
    ] {
        let err = create(KeyType::Ed25519, KeyFormat::Pem, bad).unwrap_err();
        assert_eq!(err.code, KeyError::INVALID_PARAMETER_VALUE, "{bad:?}");
    }
    // Spaces and punctuation are ordinary printable ASCII.
    let spaced = create(KeyType::Ed25519, KeyFormat::Pem, "my key (prod)").unwrap();
    assert!(spaced.public_key_openssh.ends_with(" my key (prod)"));
}

#[test]
fn debug_output_hides_the_private_key() {
    let created = create(KeyType::Ed25519, KeyFormat::Pem, "secret").unwrap();
    let debug = format!("{created:?}");
    assert!(!debug.contains("PRIVATE KEY"));
    assert!(debug.contains(&created.fingerprint));
}
