//! age keys for the encryption tests, made and used with the `age` crate
//! (the format the `age` tool reads): an identity file as `keygen` writes
//! one, a store sealed by hand as the binary seals one, and sealed text
//! opened by hand, as a person recovering a set would.

use super::*;

use std::io::{Read, Write};
use std::path::PathBuf;

use age::secrecy::ExposeSecret;

/// The first line of age's ASCII armour.
pub const AGE_ARMOR: &str = "-----BEGIN AGE ENCRYPTED FILE-----";

/// An age X25519 key: the identity, its recipient (`age1…`) and the file
/// holding the identity (mode 0600).
pub struct AgeKey {
    pub identity: age::x25519::Identity,
    pub recipient: String,
    pub file: PathBuf,
}

impl AgeKey {
    /// How `doctor` and `serve` name the recipient: `age1…` and its last
    /// 8 characters, with the start of the SHA-256 of the whole.
    pub fn fingerprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.recipient.as_bytes());
        let hex: String = digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect();
        format!("age1…{} (SHA256:{hex})", &self.recipient[self.recipient.len() - 8..])
    }

    /// `--encrypt-to RECIPIENT --identity FILE`.
    pub fn flags(&self) -> Vec<String> {
        let file = self.file.display().to_string();
        vec!["--encrypt-to".into(), self.recipient.clone(), "--identity".into(), file]
    }
}

impl TestEnv {
    /// A new identity in `name` under this HOME, mode 0600.
    pub fn age_key(&self, name: &str) -> AgeKey {
        use std::os::unix::fs::PermissionsExt;
        let identity = age::x25519::Identity::generate();
        let recipient = identity.to_public().to_string();
        let file = self.home().join(name);
        let text = format!("# public key: {recipient}\n{}\n", identity.to_string().expose_secret());
        std::fs::write(&file, text).expect("write the identity");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod the identity");
        AgeKey {
            identity,
            recipient,
            file,
        }
    }

    /// Runs the binary with `args`, then `extra` (e.g. [`AgeKey::flags`]).
    pub fn run_and(&self, args: &[&str], extra: &[String]) -> Run {
        Run::of(self.cmd().args(args).args(extra))
    }
}

/// `armour` (age's ASCII armour) opened with `identity`, by hand.
pub fn open_by_hand(armour: &str, identity: &age::x25519::Identity) -> Vec<u8> {
    let reader = age::armor::ArmoredReader::new(armour.as_bytes());
    let decryptor = age::Decryptor::new_buffered(reader).expect("an age file");
    let mut plain = Vec::new();
    decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .expect("it opens with the identity")
        .read_to_end(&mut plain)
        .expect("the payload decrypts");
    plain
}

/// `plain` sealed by hand to `recipient`, armoured.
pub fn seal_by_hand(plain: &[u8], recipient: &str) -> String {
    let recipient: age::x25519::Recipient = recipient.parse().expect("a recipient");
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient)).expect("an encryptor");
    let armour = age::armor::ArmoredWriter::wrap_output(Vec::new(), age::armor::Format::AsciiArmor).expect("armour");
    let mut writer = encryptor.wrap_output(armour).expect("a writer");
    writer.write_all(plain).expect("encrypt");
    let bytes = writer.finish().and_then(|armour| armour.finish()).expect("finish");
    String::from_utf8(bytes).expect("armour is text")
}

/// A plain store (format 1) as the binary seals it to `recipient`: format
/// 2, the tokens, the previous token and the consent state under `sealed`.
pub fn sealed_store(plain: &Value, recipient: &str) -> Value {
    let mut store = plain.clone();
    let object = store.as_object_mut().expect("a store object");
    let mut secret = serde_json::Map::new();
    for field in ["tokens", "previous", "pending_auth"] {
        secret.insert(field.to_owned(), object.remove(field).unwrap_or(Value::Null));
    }
    let sealed = seal_by_hand(Value::Object(secret).to_string().as_bytes(), recipient);
    object.insert("version".into(), json!(2));
    object.insert("sealed".into(), json!(sealed));
    store
}

/// The secret part of a sealed store, opened by hand with `identity`.
pub fn opened_store(store: &Value, identity: &age::x25519::Identity) -> Value {
    let armour = store["sealed"].as_str().expect("a sealed store");
    serde_json::from_slice(&open_by_hand(armour, identity)).expect("the sealed part is JSON")
}
