//! The development outbox: one JSON line per message, appended to a file.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt as _;

use super::{EmailError, EmailSender, Message};
use crate::BoxFuture;

/// Appends each message as one JSON line to a file, in the Better Auth conformance kit's
/// outbox format: `{"kind","to","url","token","at"}` for links, `{"kind","to","otp","at"}`
/// for codes. The file (and its folder) is created when missing.
///
/// For development and tests only: the file holds live tokens. Nothing is logged.
#[derive(Debug)]
pub struct OutboxSender {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl OutboxSender {
    /// An outbox appending to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The file it appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The line written for `message` (with its newline).
    pub fn line(message: &Message) -> String {
        let mut entry = Map::new();
        entry.insert("kind".into(), Value::String(message.kind.to_string()));
        entry.insert("to".into(), Value::String(message.to.as_str().to_owned()));
        if let Some(url) = &message.url {
            entry.insert("url".into(), Value::String(url.clone()));
        }
        if let Some(token) = &message.token {
            entry.insert("token".into(), Value::String(token.clone()));
        }
        if let Some(otp) = &message.otp {
            entry.insert("otp".into(), Value::String(otp.clone()));
        }
        entry.insert(
            "at".into(),
            Value::String(crate::time::format(&crate::time::now())),
        );
        let mut line = Value::Object(entry).to_string();
        line.push('\n');
        line
    }
}

impl EmailSender for OutboxSender {
    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), EmailError>> {
        Box::pin(async move {
            let line = Self::line(message);
            // One writer at a time, and each line in one append write, so concurrent
            // messages never interleave.
            let _guard = self.lock.lock().await;
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                tokio::fs::create_dir_all(dir).await?;
            }
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .await?;
            file.write_all(line.as_bytes()).await?;
            file.flush().await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::{Address, VERIFY_EMAIL};

    #[tokio::test]
    async fn appends_one_json_line_per_message() {
        let dir = std::env::temp_dir().join(format!(
            "portcullis-outbox-{}",
            crate::crypto::random_string(8, crate::crypto::ALPHANUMERIC)
        ));
        let path = dir.join("sub/outbox.jsonl");
        let outbox = OutboxSender::new(&path);
        let to = Address::parse("a@example.com").unwrap();
        let link = Message::new(VERIFY_EMAIL, to.clone(), "s", "t", "h")
            .with_link("http://x.test/api/auth/verify-email?token=T", "T");
        let code = Message::new("two-factor-otp", to, "s", "t", "h").with_otp("123456");
        outbox.send(&link).await.unwrap();
        outbox.send(&code).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        let keys: Vec<&String> = lines[0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["kind", "to", "url", "token", "at"]);
        assert_eq!(lines[0]["kind"], "verify-email");
        assert_eq!(lines[0]["token"], "T");
        assert_eq!(lines[1]["otp"], "123456");
        assert!(lines[1].get("url").is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
