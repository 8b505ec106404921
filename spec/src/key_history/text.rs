//! The text of one statement (five lines, one spelling) and the framing of a history (the
//! statement notes one after another, told apart by their first line).

use super::{KeyHistoryError, MAX_STATEMENT_BYTES, MAX_STATEMENT_SIGNATURES, STATEMENT_HEADER};
use crate::checkpoint::parse_tree_size;
use crate::hash::Hash;
use crate::note::{KeyName, Note, SIGNATURE_LINE_PREFIX};

/// What a statement does to a key, given by its vkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The key may sign trees of this size and above.
    Introduce {
        /// The new key.
        vkey: String,
        /// The smallest tree size it may sign.
        from: u64,
    },
    /// The key signs no tree larger than this.
    Retire {
        /// The key.
        vkey: String,
        /// The largest tree size it may sign.
        last: u64,
    },
    /// The key's signatures on trees of this size and above are a compromise.
    Revoke {
        /// The key.
        vkey: String,
        /// The first tree size whose signature by it is a compromise.
        from: u64,
    },
}

impl Action {
    /// The vkey the action is about.
    pub fn vkey(&self) -> &str {
        match self {
            Action::Introduce { vkey, .. }
            | Action::Retire { vkey, .. }
            | Action::Revoke { vkey, .. } => vkey,
        }
    }

    fn word(&self) -> &'static str {
        match self {
            Action::Introduce { .. } => "introduce",
            Action::Retire { .. } => "retire",
            Action::Revoke { .. } => "revoke",
        }
    }

    fn size(&self) -> u64 {
        match self {
            Action::Introduce { from, .. } | Action::Revoke { from, .. } => *from,
            Action::Retire { last, .. } => *last,
        }
    }
}

/// One statement of a history, unsigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The key name of every key in the history.
    pub subject: KeyName,
    /// Its position in the history, from 0.
    pub sequence: u64,
    /// SHA-256 of the previous statement's note bytes (zero for statement 0).
    pub previous: Hash,
    /// What it does.
    pub action: Action,
}

impl Statement {
    /// The five-line text that its signatures sign.
    pub fn to_text(&self) -> String {
        format!(
            "{STATEMENT_HEADER}\n{}\n{}\n{}\n{} {} {}\n",
            self.subject.as_str(),
            self.sequence,
            self.previous.to_base64(),
            self.action.word(),
            self.action.vkey(),
            self.action.size()
        )
    }

    /// The statement as a note without signatures, ready to be signed.
    pub fn to_note(&self) -> Result<Note, KeyHistoryError> {
        Note::new(self.to_text()).map_err(|error| KeyHistoryError::Text {
            statement: usize::try_from(self.sequence).unwrap_or(usize::MAX),
            line: 1,
            reason: error.to_string(),
        })
    }

    /// Reads the text of statement number `position` of a history: exactly five lines, each
    /// in its one spelling. The vkey is read as a word here and checked by the verifier.
    pub fn parse(text: &str, position: usize) -> Result<Statement, KeyHistoryError> {
        let error = |line: usize, reason: String| KeyHistoryError::Text {
            statement: position,
            line,
            reason,
        };
        let Some(body) = text.strip_suffix('\n') else {
            return Err(error(5, "the text must end with a newline".into()));
        };
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() != 5 {
            return Err(error(
                lines.len().min(5),
                format!("expected 5 lines, found {}", lines.len()),
            ));
        }
        if lines[0] != STATEMENT_HEADER {
            return Err(error(1, format!("expected {STATEMENT_HEADER:?}")));
        }
        let subject = KeyName::new(lines[1]).map_err(|e| error(2, e.to_string()))?;
        let sequence = parse_tree_size(lines[2]).map_err(|e| error(3, e.to_string()))?;
        let previous = Hash::from_base64(lines[3]).map_err(|e| error(4, e.to_string()))?;
        if previous.to_base64() != lines[3] {
            return Err(error(4, "the hash is not in its canonical base64".into()));
        }
        let words: Vec<&str> = lines[4].split(' ').collect();
        let [word, vkey, size] = words[..] else {
            return Err(error(
                5,
                "expected `introduce|retire|revoke <vkey> <tree size>`, single spaces".into(),
            ));
        };
        if vkey.is_empty() {
            return Err(error(5, "the vkey is empty".into()));
        }
        let size = parse_tree_size(size).map_err(|e| error(5, e.to_string()))?;
        let vkey = vkey.to_owned();
        let action = match word {
            "introduce" => Action::Introduce { vkey, from: size },
            "retire" => Action::Retire { vkey, last: size },
            "revoke" => Action::Revoke { vkey, from: size },
            other => {
                return Err(error(
                    5,
                    format!(
                        "unknown action {:?}; expected introduce, retire or revoke",
                        crate::note::excerpt(other, 32)
                    ),
                ))
            }
        };
        Ok(Statement {
            subject,
            sequence,
            previous,
            action,
        })
    }
}

/// Cuts a history into its statement notes. A statement's text has no blank line, so each
/// note is: lines up to the first blank line, then signature lines (each starting with the em
/// dash) up to the next line that does not. Each slice is exactly one note's bytes.
pub fn split_statements(history: &[u8]) -> Result<Vec<&[u8]>, KeyHistoryError> {
    if history.len() > super::MAX_HISTORY_BYTES {
        return Err(KeyHistoryError::TooLarge {
            found: history.len(),
        });
    }
    let framing = |statement: usize, reason: &str| KeyHistoryError::Framing {
        statement,
        reason: reason.to_owned(),
    };
    let mut statements = Vec::new();
    let mut start = 0usize;
    while start < history.len() {
        let position = statements.len();
        if position >= super::MAX_STATEMENTS {
            return Err(KeyHistoryError::TooManyStatements);
        }
        let rest = &history[start..];
        let window = &rest[..rest.len().min(MAX_STATEMENT_BYTES)];
        let blank = find(window, b"\n\n")
            .ok_or_else(|| framing(position, "no blank line before the signatures"))?;
        let mut end = blank + 2;
        let mut signatures = 0usize;
        while rest[end..].starts_with(SIGNATURE_LINE_PREFIX.as_bytes()) {
            let line_end = find(&rest[end..], b"\n")
                .ok_or_else(|| framing(position, "the last signature line has no newline"))?;
            end += line_end + 1;
            signatures += 1;
            if signatures > MAX_STATEMENT_SIGNATURES {
                return Err(framing(position, "more than 8 signature lines"));
            }
        }
        if signatures == 0 {
            return Err(framing(position, "no signature line after the blank line"));
        }
        if end > MAX_STATEMENT_BYTES {
            return Err(framing(position, "the statement is larger than 16 KiB"));
        }
        statements.push(&rest[..end]);
        start += end;
    }
    Ok(statements)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
