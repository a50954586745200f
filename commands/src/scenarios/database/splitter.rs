//! Splits a plain-format pg_dump into statements, COPY blocks and psql meta-lines, streaming:
//! input arrives in chunks of any size and the output is the same whatever the boundaries.
//!
//! It knows what breaks naive splitters: `'…'` strings with doubled quotes, `E'…'` strings
//! with backslash escapes, `"quoted"` identifiers, `$tag$…$tag$` dollar quoting, `--` and nested
//! `/* */` comments, `BEGIN ATOMIC … END` function bodies, and `COPY … FROM stdin` blocks whose
//! data ends at a line holding only `\.`. psql meta-lines that pg_dump writes (`\restrict`,
//! `\unrestrict`, `\connect`) are passed on; any other is refused with its line number.

use std::fmt;

use super::sql::{Class, Kind, classify};

/// What to do about a backup that is cut short or damaged, said the same way by every layer.
pub const PICK_PREVIOUS: &str = "pick the previous backup (/db backups lists them)";

/// One unit of the dump, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// An SQL statement without its terminating semicolon.
    Statement(Statement),
    /// A `COPY … FROM stdin` statement: its data follows as [`Piece::CopyData`].
    CopyStart {
        /// The statement, without the semicolon.
        statement: Statement,
        /// The table being loaded, as written (`public."Mixed"`).
        table: String,
    },
    /// Raw COPY data in text format, in chunks (not always whole lines).
    CopyData(Vec<u8>),
    /// The end of a COPY block, with the number of rows it held.
    CopyEnd {
        /// Data lines in the block.
        rows: u64,
    },
    /// An accepted psql meta-command (`restrict`, `unrestrict`, `connect`) and its argument.
    Meta {
        /// The command word without the backslash.
        command: String,
        /// The rest of the line.
        argument: String,
        /// Its line number.
        line: u64,
    },
}

/// A statement with where it started in the dump, and what PostgreSQL's grammar says it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// The SQL text.
    pub sql: String,
    /// The 1-based line of its first character.
    pub line: u64,
    /// The byte offset of its first character in the decompressed dump.
    pub offset: u64,
    /// Its class, from its parse tree.
    pub class: Class,
}

impl Statement {
    /// A statement parsed with the server's defaults (`standard_conforming_strings` on).
    pub fn new(sql: &str, line: u64, offset: u64) -> Statement {
        Statement {
            sql: sql.to_string(),
            line,
            offset,
            class: classify(sql, false),
        }
    }

    /// The first few words, for messages; never a literal, which may hold row data.
    pub fn head(&self) -> String {
        crate::render::words_before_data(&self.sql, 6, 80)
    }
}

/// Why the dump cannot be split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SplitError {
    /// A psql meta-command drbot does not run.
    Meta {
        /// The command line as written.
        text: String,
        /// Its line.
        line: u64,
    },
    /// The dump ends inside a string, comment, statement or COPY block, or without
    /// pg_dump's closing line.
    Truncated {
        /// What it ended inside.
        inside: &'static str,
        /// The line where that began.
        line: u64,
        /// Bytes read in all.
        offset: u64,
    },
    /// A statement is not valid UTF-8.
    Encoding {
        /// Its line.
        line: u64,
    },
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitError::Meta { text, line } => write!(
                f,
                "line {line}: the psql meta-command `{text}` is not supported (only \\restrict, \\unrestrict and \\connect are)"
            ),
            SplitError::Truncated {
                inside,
                line,
                offset,
            } => write!(
                f,
                "the backup ends early: its SQL is truncated inside {inside} begun at line {line} (after {offset} bytes of SQL), so the backup was cut short when it was made; {PICK_PREVIOUS}"
            ),
            SplitError::Encoding { line } => {
                write!(f, "line {line}: the statement is not valid UTF-8")
            }
        }
    }
}

impl std::error::Error for SplitError {}

/// Where in the SQL the scanner is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    /// Ordinary SQL.
    Code,
    /// `'…'`; `escapes` for `E'…'` strings (and all strings with standard_conforming_strings off).
    Quote { escapes: bool, backslash: bool },
    /// `"…"`.
    Ident,
    /// Reading a possible `$tag$` opener; the tag so far.
    DollarTag(Vec<u8>),
    /// Inside `$tag$ … $tag$`: the closing delimiter and where the body began in the buffer.
    Dollar { delim: Vec<u8>, body_start: usize },
    /// `-- …` to the end of the line; the comment text so far (kept short).
    LineComment(Vec<u8>),
    /// `/* … */`, nested.
    BlockComment { depth: u32, star: bool, slash: bool },
    /// A psql meta-line being read.
    MetaLine(Vec<u8>),
    /// After a COPY … FROM stdin statement: skipping the rest of its line.
    CopyLineRest,
    /// Inside COPY data.
    CopyData,
}

/// Most COPY data held before it is handed on.
const COPY_CHUNK: usize = 256 * 1024;
/// Room past [`COPY_CHUNK`] for the row that crosses it, so a chunk's buffer is not doubled to
/// twice the chunk (the chunks in flight are most of the restore's memory).
const COPY_SLACK: usize = 16 * 1024;

/// The streaming splitter.
#[derive(Debug)]
pub struct Splitter {
    mode: Mode,
    /// The statement being built.
    buf: Vec<u8>,
    /// Whether `buf` holds anything but whitespace.
    content: bool,
    /// Line of the statement's first content.
    start_line: u64,
    /// Offset of the statement's first content.
    start_offset: u64,
    /// Current line (1-based).
    line: u64,
    /// Bytes consumed.
    offset: u64,
    /// The previous byte was a newline (or nothing yet).
    line_start: bool,
    /// The previous byte in Code was `-` / `/` that could start a comment.
    dash: bool,
    slash: bool,
    /// After a quote closed: the quote kind, so `''` and `""` continue it.
    just_closed: Option<u8>,
    just_closed_escapes: bool,
    /// The word being read in Code, lowercased, for BEGIN ATOMIC tracking.
    word: Vec<u8>,
    /// Words seen in this statement (only the first few matter).
    words_seen: u32,
    /// The statement is CREATE [OR REPLACE] FUNCTION/PROCEDURE: BEGIN…END nests.
    routine: RoutineState,
    /// BEGIN/CASE … END depth inside a routine body.
    depth: u32,
    /// `SET standard_conforming_strings = off` was seen.
    backslash_strings: bool,
    /// COPY data waiting to be handed on.
    copy: Vec<u8>,
    /// Rows in the current COPY block.
    copy_rows: u64,
    /// In COPY data at a line start: bytes of a possible `\.` terminator seen so far.
    copy_term: Vec<u8>,
    /// Line where the current COPY block began.
    copy_line: u64,
    /// pg_dump's header and closing comments.
    saw_header: bool,
    saw_complete: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RoutineState {
    /// Nothing known yet.
    Unknown,
    /// Saw CREATE (and maybe OR REPLACE).
    Create,
    /// A function or procedure.
    Routine,
    /// Something else.
    Other,
}

impl Default for Splitter {
    fn default() -> Self {
        Splitter::new()
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

impl Splitter {
    /// A splitter at the start of a dump.
    pub fn new() -> Splitter {
        Splitter {
            mode: Mode::Code,
            buf: Vec::new(),
            content: false,
            start_line: 1,
            start_offset: 0,
            line: 1,
            offset: 0,
            line_start: true,
            dash: false,
            slash: false,
            just_closed: None,
            just_closed_escapes: false,
            word: Vec::new(),
            words_seen: 0,
            routine: RoutineState::Unknown,
            depth: 0,
            backslash_strings: false,
            copy: Vec::new(),
            copy_rows: 0,
            copy_term: Vec::new(),
            copy_line: 0,
            saw_header: false,
            saw_complete: false,
        }
    }

    /// The current line number.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Feeds the next chunk; complete pieces are appended to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Piece>) -> Result<(), SplitError> {
        let mut i = 0;
        while i < chunk.len() {
            if self.mode == Mode::CopyData {
                i += self.feed_copy(&chunk[i..], out);
                continue;
            }
            let b = chunk[i];
            self.byte(b, out)?;
            i += 1;
        }
        if self.copy.len() >= COPY_CHUNK {
            self.hand_on(out);
        }
        Ok(())
    }

    /// Ends the input: anything left open is an error.
    pub fn finish(&mut self, out: &mut Vec<Piece>) -> Result<(), SplitError> {
        let truncated = |inside, line, offset| SplitError::Truncated {
            inside,
            line,
            offset,
        };
        match &self.mode {
            Mode::Code | Mode::DollarTag(_) => {}
            Mode::LineComment(_) => self.end_line_comment(),
            Mode::MetaLine(_) => {
                self.end_meta(out)?;
            }
            Mode::Quote { .. } | Mode::Ident => {
                return Err(truncated("a quoted string", self.start_line, self.offset));
            }
            Mode::Dollar { .. } => {
                return Err(truncated("a $-quoted body", self.start_line, self.offset));
            }
            Mode::BlockComment { .. } => {
                return Err(truncated("a /* comment */", self.line, self.offset));
            }
            Mode::CopyLineRest | Mode::CopyData => {
                // A terminator with no newline after it still ends the block.
                if self.copy_term == b"\\." {
                    self.end_copy(out);
                } else {
                    return Err(truncated("COPY data", self.copy_line, self.offset));
                }
            }
        }
        if self.content {
            return Err(truncated(
                "a statement with no closing semicolon",
                self.start_line,
                self.offset,
            ));
        }
        if self.saw_header && !self.saw_complete {
            return Err(truncated(
                "the dump (pg_dump's closing \"dump complete\" line is missing)",
                1,
                self.offset,
            ));
        }
        Ok(())
    }

    /// COPY data: whole lines are passed through; a line of just `\.` ends the block.
    /// Returns how many bytes of `data` were used.
    fn feed_copy(&mut self, data: &[u8], out: &mut Vec<Piece>) -> usize {
        let mut i = 0;
        while i < data.len() {
            if self.line_start || !self.copy_term.is_empty() {
                // Possibly a terminator: `\.` then `\n`, `\r\n` or the end of input.
                let b = data[i];
                let expect_next = match self.copy_term.as_slice() {
                    [] => b == b'\\',
                    [b'\\'] => b == b'.',
                    [b'\\', b'.'] => b == b'\n' || b == b'\r',
                    [b'\\', b'.', b'\r'] => b == b'\n',
                    _ => false,
                };
                if expect_next {
                    self.copy_term.push(b);
                    self.line_start = false;
                    self.offset += 1;
                    i += 1;
                    if b == b'\n' {
                        self.line += 1;
                        self.line_start = true;
                        self.end_copy(out);
                        return i;
                    }
                    continue;
                }
                // Not a terminator: what was held back is data.
                let held = std::mem::take(&mut self.copy_term);
                self.copy.extend_from_slice(&held);
                self.line_start = false;
            }
            // Copy through to the end of this line.
            match data[i..].iter().position(|&c| c == b'\n') {
                Some(n) => {
                    self.copy.extend_from_slice(&data[i..i + n + 1]);
                    self.offset += (n + 1) as u64;
                    self.line += 1;
                    self.copy_rows += 1;
                    self.line_start = true;
                    i += n + 1;
                    if self.copy.len() >= COPY_CHUNK {
                        self.hand_on(out);
                    }
                }
                None => {
                    // A long row may be handed on in pieces: COPY takes any chunking.
                    self.copy.extend_from_slice(&data[i..]);
                    self.offset += (data.len() - i) as u64;
                    i = data.len();
                    if self.copy.len() >= COPY_CHUNK {
                        self.hand_on(out);
                    }
                }
            }
        }
        i
    }

    /// Hands the COPY data held on, the next held in a buffer sized for one chunk.
    fn hand_on(&mut self, out: &mut Vec<Piece>) {
        let next = Vec::with_capacity(COPY_CHUNK + COPY_SLACK);
        out.push(Piece::CopyData(std::mem::replace(&mut self.copy, next)));
    }

    fn end_copy(&mut self, out: &mut Vec<Piece>) {
        if !self.copy.is_empty() {
            out.push(Piece::CopyData(std::mem::take(&mut self.copy)));
        }
        out.push(Piece::CopyEnd {
            rows: self.copy_rows,
        });
        self.copy_rows = 0;
        self.copy_term.clear();
        self.mode = Mode::Code;
        self.line_start = true;
    }

    fn byte(&mut self, b: u8, out: &mut Vec<Piece>) -> Result<(), SplitError> {
        let was_line_start = self.line_start;
        self.offset += 1;
        if b == b'\n' {
            self.line += 1;
        }
        self.line_start = b == b'\n';
        match std::mem::replace(&mut self.mode, Mode::Code) {
            Mode::Code => self.code(b, was_line_start, out)?,
            Mode::Quote { escapes, backslash } => {
                self.buf.push(b);
                if backslash {
                    self.mode = Mode::Quote {
                        escapes,
                        backslash: false,
                    };
                } else if escapes && b == b'\\' {
                    self.mode = Mode::Quote {
                        escapes,
                        backslash: true,
                    };
                } else if b == b'\'' {
                    self.just_closed = Some(b'\'');
                    self.just_closed_escapes = escapes;
                } else {
                    self.mode = Mode::Quote {
                        escapes,
                        backslash: false,
                    };
                }
            }
            Mode::Ident => {
                self.buf.push(b);
                if b == b'"' {
                    self.just_closed = Some(b'"');
                } else {
                    self.mode = Mode::Ident;
                }
            }
            Mode::DollarTag(mut tag) => {
                self.buf.push(b);
                if b == b'$' {
                    let mut delim = vec![b'$'];
                    delim.extend_from_slice(&tag);
                    delim.push(b'$');
                    self.mode = Mode::Dollar {
                        delim,
                        body_start: self.buf.len(),
                    };
                } else if is_ident(b) && !(tag.is_empty() && b.is_ascii_digit()) {
                    tag.push(b);
                    self.mode = Mode::DollarTag(tag);
                } else {
                    // `$1`, `a$b`: not a dollar quote after all; this byte is ordinary code.
                    self.buf.pop();
                    self.offset -= 1;
                    if b == b'\n' {
                        self.line -= 1;
                    }
                    self.line_start = was_line_start;
                    return self.byte(b, out);
                }
            }
            Mode::Dollar { delim, body_start } => {
                self.buf.push(b);
                let closed = b == b'$'
                    && self.buf.len() >= body_start + delim.len()
                    && self.buf.ends_with(&delim);
                if !closed {
                    self.mode = Mode::Dollar { delim, body_start };
                }
            }
            Mode::LineComment(mut text) => {
                if b == b'\n' {
                    self.mode = Mode::LineComment(text);
                    self.end_line_comment();
                    if self.content {
                        self.buf.push(b'\n');
                    }
                } else {
                    if text.len() < 64 {
                        text.push(b);
                    }
                    self.mode = Mode::LineComment(text);
                }
            }
            Mode::BlockComment { depth, star, slash } => {
                if star && b == b'/' {
                    if depth == 1 {
                        if self.content {
                            self.buf.push(b' ');
                        }
                    } else {
                        self.mode = Mode::BlockComment {
                            depth: depth - 1,
                            star: false,
                            slash: false,
                        };
                    }
                } else if slash && b == b'*' {
                    self.mode = Mode::BlockComment {
                        depth: depth + 1,
                        star: false,
                        slash: false,
                    };
                } else {
                    self.mode = Mode::BlockComment {
                        depth,
                        star: b == b'*',
                        slash: b == b'/',
                    };
                }
            }
            Mode::MetaLine(mut text) => {
                if b == b'\n' {
                    self.mode = Mode::MetaLine(text);
                    self.end_meta(out)?;
                } else {
                    text.push(b);
                    self.mode = Mode::MetaLine(text);
                }
            }
            Mode::CopyLineRest => {
                if b == b'\n' {
                    self.mode = Mode::CopyData;
                    self.copy_line = self.line;
                } else {
                    self.mode = Mode::CopyLineRest;
                }
            }
            // COPY data never reaches here: `feed` hands it to `feed_copy`.
            Mode::CopyData => self.mode = Mode::CopyData,
        }
        Ok(())
    }

    fn code(&mut self, b: u8, line_start: bool, out: &mut Vec<Piece>) -> Result<(), SplitError> {
        // `''` or `""` right after a closing quote continues the same string or identifier.
        if let Some(q) = self.just_closed.take()
            && b == q
        {
            self.buf.push(b);
            self.mode = if q == b'\'' {
                Mode::Quote {
                    escapes: self.just_closed_escapes,
                    backslash: false,
                }
            } else {
                Mode::Ident
            };
            return Ok(());
        }
        if !is_ident(b) {
            self.end_word();
        }
        let dash = std::mem::take(&mut self.dash);
        let slash = std::mem::take(&mut self.slash);
        match b {
            b'-' if dash => {
                self.buf.pop();
                self.trim_if_empty();
                self.mode = Mode::LineComment(Vec::new());
                return Ok(());
            }
            b'*' if slash => {
                self.buf.pop();
                self.trim_if_empty();
                self.mode = Mode::BlockComment {
                    depth: 1,
                    star: false,
                    slash: false,
                };
                return Ok(());
            }
            b'\\' if line_start && !self.content => {
                self.mode = Mode::MetaLine(Vec::new());
                self.buf.clear();
                return Ok(());
            }
            _ => {}
        }
        if !self.content {
            if b.is_ascii_whitespace() {
                return Ok(());
            }
            self.content = true;
            self.start_line = self.line - u64::from(b == b'\n');
            self.start_offset = self.offset - 1;
        }
        self.buf.push(b);
        match b {
            b'-' => self.dash = true,
            b'/' => self.slash = true,
            b'\'' => {
                let escapes = self.backslash_strings || self.e_prefix();
                self.mode = Mode::Quote {
                    escapes,
                    backslash: false,
                };
            }
            b'"' => self.mode = Mode::Ident,
            b'$' => {
                // A dollar quote starts only where an identifier could not continue.
                let prev = self.buf.len().checked_sub(2).map(|i| self.buf[i]);
                if !prev.is_some_and(is_ident) {
                    self.mode = Mode::DollarTag(Vec::new());
                }
            }
            b';' if self.depth == 0 => self.end_statement(out)?,
            c if is_ident(c) => self.word.push(c.to_ascii_lowercase()),
            _ => {}
        }
        Ok(())
    }

    /// True when the quote just pushed is preceded by a lone `E`/`e` (an escape string).
    fn e_prefix(&self) -> bool {
        let n = self.buf.len();
        n >= 2 && matches!(self.buf[n - 2], b'e' | b'E') && (n < 3 || !is_ident(self.buf[n - 3]))
    }

    /// After a comment opener was taken off the buffer: if nothing else is in it, the
    /// statement has not begun yet.
    fn trim_if_empty(&mut self) {
        if self.buf.iter().all(u8::is_ascii_whitespace) {
            self.buf.clear();
            self.content = false;
        }
    }

    /// A word in code has ended: track CREATE FUNCTION … BEGIN ATOMIC … END nesting the way
    /// psql does.
    fn end_word(&mut self) {
        if self.word.is_empty() {
            return;
        }
        let word = std::mem::take(&mut self.word);
        self.words_seen += 1;
        let w = word.as_slice();
        self.routine = match (self.routine, self.words_seen, w) {
            (RoutineState::Unknown, 1, b"create") => RoutineState::Create,
            (RoutineState::Create, _, b"or" | b"replace") => RoutineState::Create,
            (RoutineState::Create, _, b"function" | b"procedure") => RoutineState::Routine,
            (RoutineState::Routine, _, _) => RoutineState::Routine,
            _ => RoutineState::Other,
        };
        if self.routine == RoutineState::Routine {
            match w {
                b"begin" | b"case" => self.depth += 1,
                b"end" => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
        }
    }

    fn end_line_comment(&mut self) {
        if let Mode::LineComment(text) = std::mem::replace(&mut self.mode, Mode::Code) {
            let t = String::from_utf8_lossy(&text);
            match t.trim() {
                "PostgreSQL database dump" => self.saw_header = true,
                "PostgreSQL database dump complete" => self.saw_complete = true,
                _ => {}
            }
        }
    }

    fn end_meta(&mut self, out: &mut Vec<Piece>) -> Result<(), SplitError> {
        let Mode::MetaLine(text) = std::mem::replace(&mut self.mode, Mode::Code) else {
            return Ok(());
        };
        // The meta-line ended with the newline just counted.
        let line = self.line - u64::from(self.line_start);
        let text = String::from_utf8_lossy(&text)
            .trim_end_matches('\r')
            .to_string();
        let (command, argument) = match text.split_once(char::is_whitespace) {
            Some((c, a)) => (c.to_string(), a.trim().to_string()),
            None => (text.clone(), String::new()),
        };
        match command.as_str() {
            "restrict" | "unrestrict" | "connect" | "c" => {
                out.push(Piece::Meta {
                    command: if command == "c" {
                        "connect".to_string()
                    } else {
                        command
                    },
                    argument,
                    line,
                });
                Ok(())
            }
            _ => Err(SplitError::Meta {
                text: format!("\\{}", crate::render::truncate(&text, 60)),
                line,
            }),
        }
    }

    fn end_statement(&mut self, out: &mut Vec<Piece>) -> Result<(), SplitError> {
        self.buf.pop(); // the semicolon
        let raw = std::mem::take(&mut self.buf);
        let sql = String::from_utf8(raw).map_err(|_| SplitError::Encoding {
            line: self.start_line,
        })?;
        let sql = sql.trim_end().to_string();
        let class = classify(&sql, self.backslash_strings);
        let statement = Statement {
            sql,
            line: self.start_line,
            offset: self.start_offset,
            class,
        };
        self.content = false;
        self.words_seen = 0;
        self.routine = RoutineState::Unknown;
        self.depth = 0;
        self.word.clear();
        match &statement.class.kind {
            Kind::CopyFromStdin { table } => {
                let table = table.clone();
                self.mode = Mode::CopyLineRest;
                self.copy_rows = 0;
                self.copy_line = self.line;
                out.push(Piece::CopyStart { statement, table });
                return Ok(());
            }
            Kind::Set { name, value } | Kind::SetConfig { name, value }
                if name == "standard_conforming_strings" =>
            {
                // RESET and SET … TO DEFAULT (no value) put back the server's default: on.
                match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    None | Some("on" | "true" | "1" | "yes") => self.backslash_strings = false,
                    Some("off" | "false" | "0" | "no") => self.backslash_strings = true,
                    _ => {}
                }
            }
            _ => {}
        }
        out.push(Piece::Statement(statement));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split_chunks(input: &[u8], sizes: &[usize]) -> Result<Vec<Piece>, SplitError> {
        let mut s = Splitter::new();
        let mut out = Vec::new();
        let mut rest = input;
        let mut k = 0;
        while !rest.is_empty() {
            let n = sizes
                .get(k)
                .copied()
                .unwrap_or(rest.len())
                .clamp(1, rest.len());
            s.feed(&rest[..n], &mut out)?;
            rest = &rest[n..];
            k += 1;
        }
        s.finish(&mut out)?;
        Ok(merge_copy(out))
    }

    /// Adjacent COPY data pieces joined, so outputs compare whatever the chunking.
    fn merge_copy(pieces: Vec<Piece>) -> Vec<Piece> {
        let mut out: Vec<Piece> = Vec::new();
        for p in pieces {
            match (out.last_mut(), p) {
                (Some(Piece::CopyData(a)), Piece::CopyData(b)) => a.extend_from_slice(&b),
                (_, p) => out.push(p),
            }
        }
        out
    }

    fn split(input: &str) -> Vec<Piece> {
        split_chunks(input.as_bytes(), &[]).expect("test setup")
    }

    fn sqls(pieces: &[Piece]) -> Vec<String> {
        pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Statement(s) => Some(s.sql.clone()),
                Piece::CopyStart { statement, .. } => Some(statement.sql.clone()),
                _ => None,
            })
            .collect()
    }

    const TRICKY: &str = r#"--
-- PostgreSQL database dump
--

\restrict AbC123xyz

SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
CREATE FUNCTION public.f() RETURNS text
    LANGUAGE plpgsql
    AS $_$ BEGIN RETURN 'a;b' || $x$;$x$; END; $_$;
CREATE FUNCTION public.g() RETURNS integer LANGUAGE sql
BEGIN ATOMIC
 SELECT 1;
 SELECT CASE WHEN true THEN 2 END;
END;
INSERT INTO "Weird;Name" VALUES ('it''s; fine', E'back\'slash;', 'plain\', "x""y;");
/* a /* nested; */ comment; */ SELECT 1;
SELECT $1, a$b FROM t; -- trailing; comment
COPY public."MixedCase" (id, note) FROM stdin;
1	tab	separated
2	back\\slash \. not end
3	\N
\.
SELECT 'after copy';

\unrestrict AbC123xyz

--
-- PostgreSQL database dump complete
--

"#;

    #[test]
    fn splits_the_constructs_that_break_naive_restorers() {
        let pieces = split(TRICKY);
        let s = sqls(&pieces);
        assert_eq!(s[0], "SET standard_conforming_strings = on");
        assert!(
            s[2].ends_with("$_$ BEGIN RETURN 'a;b' || $x$;$x$; END; $_$"),
            "{}",
            s[2]
        );
        assert!(
            s[3].starts_with("CREATE FUNCTION public.g()") && s[3].ends_with("END"),
            "{}",
            s[3]
        );
        assert_eq!(
            s[4],
            r#"INSERT INTO "Weird;Name" VALUES ('it''s; fine', E'back\'slash;', 'plain\', "x""y;")"#
        );
        assert_eq!(s[5], "SELECT 1");
        assert_eq!(s[6], "SELECT $1, a$b FROM t");
        assert_eq!(s[7], r#"COPY public."MixedCase" (id, note) FROM stdin"#);
        assert_eq!(s[8], "SELECT 'after copy'");
        assert_eq!(s.len(), 9);
        assert!(
            matches!(&pieces[0], Piece::Meta { command, argument, line: 5 } if command == "restrict" && argument == "AbC123xyz")
        );
        assert!(
            pieces
                .iter()
                .any(|p| matches!(p, Piece::Meta { command, .. } if command == "unrestrict"))
        );
        let copy_start = pieces
            .iter()
            .position(|p| matches!(p, Piece::CopyStart { .. }))
            .expect("test setup");
        match &pieces[copy_start] {
            Piece::CopyStart { table, statement } => {
                assert_eq!(table, r#"public."MixedCase""#);
                assert_eq!(statement.line, 20);
            }
            _ => unreachable!(),
        }
        assert_eq!(
            pieces[copy_start + 1],
            Piece::CopyData(b"1\ttab\tseparated\n2\tback\\\\slash \\. not end\n3\t\\N\n".to_vec())
        );
        assert_eq!(pieces[copy_start + 2], Piece::CopyEnd { rows: 3 });
    }

    #[test]
    fn copy_blocks_accept_crlf_and_an_unterminated_last_line() {
        let p = split("COPY t FROM stdin;\r\na\r\n\\.\r\nSELECT 1;\n");
        assert_eq!(p[1], Piece::CopyData(b"a\r\n".to_vec()));
        assert_eq!(p[2], Piece::CopyEnd { rows: 1 });
        assert_eq!(sqls(&p), ["COPY t FROM stdin", "SELECT 1"]);
        let p = split("COPY t FROM stdin;\n\\.");
        assert_eq!(p[1], Piece::CopyEnd { rows: 0 });
    }

    #[test]
    fn backslash_strings_follow_standard_conforming_strings() {
        let p = split("SET standard_conforming_strings = off;\nSELECT 'a\\';b';\n");
        assert_eq!(sqls(&p)[1], "SELECT 'a\\';b'");
    }

    #[test]
    fn other_meta_commands_are_refused_with_their_line() {
        let e = split_chunks(b"SELECT 1;\n\n\\! rm -rf /\n", &[]).unwrap_err();
        assert_eq!(
            e,
            SplitError::Meta {
                text: "\\! rm -rf /".into(),
                line: 3
            }
        );
        assert!(e.to_string().contains("line 3"));
        let e = split_chunks(b"\\copy t from 'x'\n", &[]).unwrap_err();
        assert!(matches!(e, SplitError::Meta { line: 1, .. }));
    }

    #[test]
    fn truncation_is_detected() {
        let cases: &[(&str, &str)] = &[
            ("SELECT 'open", "a quoted string"),
            ("SELECT $$ body", "$-quoted"),
            ("COPY t FROM stdin;\n1\n2\n", "COPY data"),
            ("SELECT 1", "no closing semicolon"),
            ("/* never closed", "comment"),
            (
                "--\n-- PostgreSQL database dump\n--\nSELECT 1;\n",
                "dump complete",
            ),
        ];
        for (input, inside) in cases {
            let e = split_chunks(input.as_bytes(), &[]).unwrap_err();
            assert!(e.to_string().contains(inside), "{input}: {e}");
        }
    }

    #[test]
    fn statements_know_their_line_and_offset() {
        let p = split("SELECT 1;\n-- c\n  SELECT\n 2;\n");
        match &p[1] {
            Piece::Statement(s) => {
                assert_eq!((s.line, s.offset, s.sql.as_str()), (3, 17, "SELECT\n 2"));
                assert_eq!(s.head(), "SELECT 2");
                let insert = Statement::new("INSERT INTO public.users VALUES (1, 'a@b.c')", 1, 0);
                assert_eq!(insert.head(), "INSERT INTO public.users …");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn copy_targets_and_sources_are_read_from_the_parse_tree() {
        let tables = |input: &str| -> Vec<String> {
            split(input)
                .into_iter()
                .filter_map(|p| match p {
                    Piece::CopyStart { table, .. } => Some(table),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(
            tables("COPY public.t (a, b) FROM stdin;\n1\t2\n\\.\n"),
            ["public.t"]
        );
        assert_eq!(tables("copy \"A b\" from STDIN;\n\\.\n"), ["\"A b\""]);
        // A column named `from` and a nine-column list: still COPY FROM stdin, data follows.
        let cols: Vec<String> = (1..=9).map(|i| format!("c{i}")).collect();
        let wide = format!(
            "COPY t (\"from\", {}) FROM stdin;\nx\n\\.\nSELECT 1;\n",
            cols.join(", ")
        );
        assert_eq!(tables(&wide), ["t"]);
        assert_eq!(sqls(&split(&wide)).len(), 2);
        // COPY TO and COPY from a file carry no data: the next line is SQL again.
        assert!(tables("COPY t TO stdout;\nSELECT 1;\n").is_empty());
        assert_eq!(sqls(&split("COPY t FROM '/x';\nSELECT 1;\n")).len(), 2);
    }

    #[test]
    fn standard_conforming_strings_is_read_from_set_and_set_config() {
        for off in [
            "SET standard_conforming_strings = off;",
            "SET standard_conforming_strings TO 'off';",
            "SELECT pg_catalog.set_config('standard_conforming_strings', 'off', false);",
        ] {
            let p = split(&format!("{off}\nSELECT 'a\\';b';\nSELECT 2;\n"));
            assert_eq!(sqls(&p).len(), 3, "{off}: {:?}", sqls(&p));
            assert!(
                p.iter().all(|x| !matches!(x, Piece::Statement(s) if matches!(s.class.kind, Kind::Unparsable(_)))),
                "{off}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn chunk_boundaries_never_change_the_output(
            sizes in prop::collection::vec(1usize..40, 0..200)
        ) {
            let whole = split_chunks(TRICKY.as_bytes(), &[]);
            let chunked = split_chunks(TRICKY.as_bytes(), &sizes);
            prop_assert_eq!(whole, chunked);
        }

        #[test]
        fn copy_like_and_meta_lines_never_panic_and_split_the_same_in_any_chunks(
            lines in prop::collection::vec(
                prop_oneof![
                    Just("COPY FROM stdin;".to_string()),
                    Just("copy t(a,b) from STDIN;".to_string()),
                    Just("COPY public.\"x y\" (a) FROM stdin WITH (FORMAT text);".to_string()),
                    Just("COPY t TO stdout;".to_string()),
                    Just("\\.".to_string()),
                    Just("\\.\r".to_string()),
                    Just("\\".to_string()),
                    Just("\\connect -reuse-previous=on \"dbname='x'\"".to_string()),
                    Just("\\c - role".to_string()),
                    Just("\\restrict k".to_string()),
                    Just("\\unrestrict k".to_string()),
                    Just("\\! echo no".to_string()),
                    Just("-- PostgreSQL database dump".to_string()),
                    Just("-- PostgreSQL database dump complete".to_string()),
                    "[a-z0-9\\t\\\\.;'\"$ ]{0,12}",
                    "(COPY|copy|Copy) [a-z( )]{0,8}(FROM|from)? ?(stdin|STDIN|pstdin)?;?",
                ],
                0..30,
            ),
            sizes in prop::collection::vec(1usize..9, 0..60),
        ) {
            let text = lines.join("\n");
            let whole = split_chunks(text.as_bytes(), &[]);
            let chunked = split_chunks(text.as_bytes(), &sizes);
            prop_assert_eq!(whole, chunked);
        }

        #[test]
        fn random_sql_splits_the_same_in_any_chunks(
            text in r#"([a-z ;'"$\-/*\\\n\tE]|\$x\$|COPY t FROM stdin;\n|\\\.\n){0,80}"#,
            sizes in prop::collection::vec(1usize..7, 0..80),
        ) {
            let whole = split_chunks(text.as_bytes(), &[]);
            let chunked = split_chunks(text.as_bytes(), &sizes);
            prop_assert_eq!(whole, chunked);
        }
    }
}
