//! A CSV reader for CSV as people write it: any quote character, quotes
//! doubled or escaped with a backslash (or another byte), comment lines,
//! a UTF-8 byte-order mark, `\n`, `\r\n` or `\r` line ends. Unlike the
//! `csv` crate it says which fields were quoted (`""` is an empty text,
//! an unquoted empty field a blank one), keeps an empty line as a row of
//! no fields, and refuses a quote that is never closed (naming the line
//! it opened on) instead of reading the rest of the file into one field.

use super::CsvFormat;
use std::io::{BufRead, Read};

/// The most fields of a row: what one block holds.
pub const MAX_FIELDS: usize = infinisheet_engine::MAX_BLOCK_CELLS;

/// The most bytes of a row (with `lenient`, a quote never closed makes
/// the rest of the file one row).
pub const MAX_RECORD_BYTES: usize = 256 << 20;

/// What stops a read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsvError {
    /// The file cannot be read.
    #[error("reading the file: {0}")]
    Io(#[from] std::io::Error),
    /// A quoted field is never closed.
    #[error(
        "line {line}: a quoted field begins here and is never closed, so the rest of the file \
         would be one cell; mend the file, or import with --lenient to take it as it is"
    )]
    Unterminated {
        /// The line the field begins on, counted from 1.
        line: u64,
    },
    /// Text follows a quoted field's closing quote (`"a"b`), most often a
    /// quote inside the field neither doubled nor escaped the file's way.
    #[error(
        "line {line}: text follows the closing quote of a field; a quote inside a quoted field \
         is written twice (\"\"), or escaped with a backslash in files read with --escape '\\'; \
         mend the file, or import with --lenient to take the text into the field as it is"
    )]
    AfterQuote {
        /// The line of the closing quote, counted from 1.
        line: u64,
    },
    /// A row has more fields, or bytes, than one row can.
    #[error(
        "line {line}: a row of more than {MAX_FIELDS} fields or {} MiB cannot be imported",
        MAX_RECORD_BYTES >> 20
    )]
    TooLarge {
        /// The line the row begins on, counted from 1.
        line: u64,
    },
    /// The file begins with a UTF-16 byte-order mark but is read as UTF-8.
    #[error(
        "the file is UTF-16 (it begins with a UTF-16 byte-order mark): import it with \
         --encoding utf-16"
    )]
    Utf16,
    /// A line holds bytes that are not text in the file's encoding.
    #[error(
        "line {line} holds bytes that are not {encoding} text; name the file's encoding with \
         --encoding (utf-8, windows-1252, shift_jis…)"
    )]
    NotInEncoding {
        /// The line, counted from 1.
        line: u64,
        /// The encoding it was read in.
        encoding: &'static str,
    },
    /// A line is not UTF-8 (in a file read as UTF-8).
    #[error(
        "line {line} is not UTF-8; if the file is in another encoding, name it with --encoding \
         (windows-1252, latin1, shift_jis…)"
    )]
    NotUtf8 {
        /// The line, counted from 1.
        line: u64,
    },
}

/// The line breaks in a record's bytes (inside quoted fields: `\n`, `\r`
/// or `\r\n`, one each).
fn breaks(bytes: &[u8]) -> u64 {
    memchr::memchr2_iter(b'\n', b'\r', bytes)
        .filter(|&at| bytes[at] == b'\r' || at == 0 || bytes[at - 1] != b'\r')
        .count() as u64
}

/// One row's fields, read into one buffer.
#[derive(Debug, Default)]
pub(crate) struct Record {
    /// The fields' bytes as they are read, one after another.
    bytes: Vec<u8>,
    /// The same once checked as UTF-8, each field whole (the buffer moves
    /// here, and back for the next record).
    text: String,
    ends: Vec<usize>,
    /// Where a field's bytes go on after a quote or an escape left out
    /// (`"ab"c`, `"a\"b"`): like its end, a place a character may not be
    /// cut at.
    joins: Vec<usize>,
    quoted: Vec<bool>,
    /// The line it begins on, from 1.
    line: u64,
}

impl Record {
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The line it begins on, from 1.
    #[cfg(test)]
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// The line of the first U+FFFD it holds (what a decoder puts for
    /// bytes that are not text in its encoding), if any.
    pub(crate) fn replacement_line(&self) -> Option<u64> {
        let at = self.text.find('\u{fffd}')?;
        Some(self.line + breaks(&self.text.as_bytes()[..at]))
    }

    /// Whether every field was quoted (and there is one).
    pub(crate) fn all_quoted(&self) -> bool {
        !self.quoted.is_empty() && self.quoted.iter().all(|&q| q)
    }

    /// The fields and whether each was quoted (checked as UTF-8, each
    /// whole, when the record was read).
    pub(crate) fn fields(&self) -> impl Iterator<Item = (&str, bool)> {
        let mut start = 0;
        self.ends
            .iter()
            .zip(&self.quoted)
            .map(move |(&end, &quoted)| {
                let field = self.text.get(start..end).unwrap_or_default();
                start = end;
                (field, quoted)
            })
    }

    fn clear(&mut self) {
        if self.bytes.capacity() == 0 {
            self.bytes = std::mem::take(&mut self.text).into_bytes();
        }
        self.bytes.clear();
        self.text.clear();
        self.joins.clear();
        self.ends.clear();
        self.quoted.clear();
    }

    fn end_field(&mut self, quoted: bool) {
        self.ends.push(self.bytes.len());
        self.quoted.push(quoted);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a record (nothing read of it).
    RecordStart,
    /// At the start of a field after a delimiter.
    FieldStart,
    Unquoted,
    Quoted,
    /// After the escape byte inside quotes.
    Escaped,
    /// After a quote inside quotes: the field's end, or a doubled quote.
    QuoteInQuoted,
    /// After a quoted field's closing quote (text may follow, as written).
    AfterQuoted,
    /// Inside a comment line.
    Comment,
}

/// The reader's place in the text, apart from its input.
struct Machine {
    delimiter: u8,
    quote: u8,
    escape: Option<u8>,
    comment: Option<u8>,
    state: State,
    /// The line being read, from 1; the line the open quote began on.
    line: u64,
    quote_line: u64,
    /// A `\r` ended the last record: a `\n` right after belongs to it.
    after_cr: bool,
    first_crlf: Option<bool>,
    last_byte: Option<u8>,
    /// Line breaks of each kind between records: `\n`, `\r\n`, `\r`.
    breaks: [u64; 3],
    /// Refuse text after a closing quote (not `--lenient`).
    strict: bool,
    /// The line where text followed a closing quote first, while strict.
    after_quote: Option<u64>,
    /// The line of the first unquoted field holding a quote (`5" disk`).
    bare_quote: Option<u64>,
}

impl Machine {
    /// A line break `b` (`\n` or `\r`) seen outside quotes.
    fn line_break(&mut self, b: u8, next: Option<u8>) {
        self.line += 1;
        if b == b'\n' {
            self.breaks[0] += 1;
        }
        if self.first_crlf.is_none() {
            // `\r` then `\n` is one break; known once the next byte is.
            self.first_crlf = match (b, next) {
                (b'\r', Some(b'\n')) => Some(true),
                (b'\r', None) => None,
                _ => Some(false),
            };
        }
        self.after_cr = b == b'\r';
    }

    /// Counts the line break `b` of a quoted field (`\r\n` is one: its
    /// `\n` follows a `\r`), if it is one; `prev` is the byte before.
    fn quoted_break(&mut self, b: u8, prev: Option<u8>) {
        if b == b'\r' || (b == b'\n' && prev != Some(b'\r')) {
            self.line += 1;
        }
    }

    /// Reads from `chunk` into `record` until a record ends or the chunk
    /// does: whether a record ended, and the bytes used.
    fn step(&mut self, chunk: &[u8], record: &mut Record) -> (bool, usize) {
        let mut i = 0;
        while i < chunk.len() {
            let b = chunk[i];
            let next = chunk.get(i + 1).copied();
            // The byte before `b` in the text (the last chunk's last).
            let before = match i {
                0 => self.last_byte,
                _ => chunk.get(i - 1).copied(),
            };
            i += 1;
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    self.breaks[1] += 1;
                    if self.first_crlf.is_none() {
                        self.first_crlf = Some(true);
                    }
                    continue;
                }
                self.breaks[2] += 1;
                if self.first_crlf.is_none() {
                    self.first_crlf = Some(false);
                }
            }
            match self.state {
                State::RecordStart if Some(b) == self.comment => self.state = State::Comment,
                State::Comment => {
                    if b == b'\n' || b == b'\r' {
                        self.line_break(b, next);
                        self.state = State::RecordStart;
                        // The record begins on a later line.
                        record.line = self.line;
                    }
                }
                State::RecordStart | State::FieldStart => {
                    if b == self.quote {
                        self.state = State::Quoted;
                        self.quote_line = self.line;
                    } else if b == self.delimiter {
                        record.end_field(false);
                        self.state = State::FieldStart;
                    } else if b == b'\n' || b == b'\r' {
                        // An empty line is a record of no fields; a line
                        // ending in a delimiter ends in an empty field.
                        if self.state == State::FieldStart {
                            record.end_field(false);
                        }
                        self.line_break(b, next);
                        self.state = State::RecordStart;
                        return (true, i);
                    } else {
                        record.bytes.push(b);
                        self.state = State::Unquoted;
                    }
                }
                State::Unquoted => {
                    if b == self.delimiter {
                        record.end_field(false);
                        self.state = State::FieldStart;
                    } else if b == b'\n' || b == b'\r' {
                        record.end_field(false);
                        self.line_break(b, next);
                        self.state = State::RecordStart;
                        return (true, i);
                    } else {
                        // Runs of plain bytes at once.
                        let rest = &chunk[i - 1..];
                        let run = memchr::memchr3(self.delimiter, b'\n', b'\r', rest)
                            .unwrap_or(rest.len());
                        if self.bare_quote.is_none()
                            && memchr::memchr(self.quote, &rest[..run]).is_some()
                        {
                            self.bare_quote = Some(self.line);
                        }
                        record.bytes.extend_from_slice(&rest[..run]);
                        i += run - 1;
                    }
                }
                State::Quoted => {
                    if Some(b) == self.escape {
                        record.joins.push(record.bytes.len());
                        self.state = State::Escaped;
                    } else if b == self.quote {
                        self.state = State::QuoteInQuoted;
                    } else {
                        // Runs of quoted bytes at once, counting the lines
                        // they span.
                        let rest = &chunk[i - 1..];
                        let run = match self.escape {
                            Some(escape) => memchr::memchr2(self.quote, escape, rest),
                            None => memchr::memchr(self.quote, rest),
                        }
                        .unwrap_or(rest.len());
                        for at in memchr::memchr2_iter(b'\n', b'\r', &rest[..run]) {
                            let prev = match at {
                                0 => before,
                                _ => rest.get(at - 1).copied(),
                            };
                            self.quoted_break(rest[at], prev);
                        }
                        record.bytes.extend_from_slice(&rest[..run]);
                        i += run - 1;
                    }
                }
                State::Escaped => {
                    self.quoted_break(b, before);
                    record.bytes.push(b);
                    self.state = State::Quoted;
                }
                State::QuoteInQuoted => {
                    if b == self.quote && self.escape.is_none() {
                        record.bytes.push(b);
                        self.state = State::Quoted;
                    } else {
                        record.joins.push(record.bytes.len());
                        self.state = State::AfterQuoted;
                        i -= 1; // read it again after the closing quote
                    }
                }
                State::AfterQuoted => {
                    if b == self.delimiter {
                        record.end_field(true);
                        self.state = State::FieldStart;
                    } else if b == b'\n' || b == b'\r' {
                        record.end_field(true);
                        self.line_break(b, next);
                        self.state = State::RecordStart;
                        return (true, i);
                    } else {
                        // Text after a closing quote joins the field (with
                        // --lenient; refused otherwise).
                        if self.strict && self.after_quote.is_none() {
                            self.after_quote = Some(self.line);
                        }
                        record.bytes.push(b);
                    }
                }
            }
        }
        if let Some(&last) = chunk.last() {
            self.last_byte = Some(last);
        }
        (false, chunk.len())
    }
}

/// Reads records from UTF-8 bytes.
pub(crate) struct CsvReader<R> {
    input: std::io::BufReader<Bom<R>>,
    machine: Machine,
    lenient: bool,
    position: u64,
}

impl<R: Read> CsvReader<R> {
    pub(crate) fn new(input: R, format: &CsvFormat, lenient: bool) -> CsvReader<R> {
        CsvReader {
            input: std::io::BufReader::with_capacity(
                1 << 20,
                Bom {
                    inner: input,
                    head: Vec::new(),
                    checked: false,
                    found: false,
                    utf16: false,
                },
            ),
            machine: Machine {
                delimiter: format.delimiter,
                quote: format.quote,
                escape: format.escape,
                comment: format.comment,
                state: State::RecordStart,
                line: 1,
                quote_line: 1,
                after_cr: false,
                first_crlf: None,
                last_byte: None,
                breaks: [0; 3],
                strict: !lenient,
                after_quote: None,
                bare_quote: None,
            },
            lenient,
            position: 0,
        }
    }

    /// Bytes of the text read so far.
    pub(crate) fn position(&self) -> u64 {
        self.position
    }

    /// Whether the first line break was `\r\n`, once one was read.
    pub(crate) fn first_crlf(&self) -> Option<bool> {
        self.machine.first_crlf
    }

    /// How many line breaks between records were `\n`, `\r\n` and `\r`
    /// alone.
    pub(crate) fn breaks(&self) -> [u64; 3] {
        let mut breaks = self.machine.breaks;
        if self.machine.after_cr {
            breaks[2] += 1; // the text ended right after a `\r`
        }
        breaks
    }

    /// The line of the first unquoted field holding a quote (which an
    /// export writes quoted), if any.
    pub(crate) fn bare_quote(&self) -> Option<u64> {
        self.machine.bare_quote
    }

    /// Whether the text ends in a line break (an empty one does).
    pub(crate) fn final_newline(&self) -> bool {
        matches!(self.machine.last_byte, None | Some(b'\n' | b'\r'))
    }

    /// Whether the text began with a UTF-8 byte-order mark (left out of
    /// the first field).
    pub(crate) fn bom(&self) -> bool {
        self.input.get_ref().found
    }

    /// Reads the next record into `record`: false at the end of the text.
    /// An empty line is a record of no fields.
    pub(crate) fn read(&mut self, record: &mut Record) -> Result<bool, CsvError> {
        record.clear();
        // Where it begins (later, past comment lines, as they are read).
        record.line = self.machine.line;
        loop {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                return self.finish(record);
            }
            let (done, used) = self.machine.step(chunk, record);
            if done {
                self.machine.last_byte = Some(chunk[used - 1]);
            }
            self.input.consume(used);
            self.position += used as u64;
            if let Some(line) = self.machine.after_quote {
                return Err(CsvError::AfterQuote { line });
            }
            // Refused as it grows, a chunk past the limits at most.
            if record.ends.len() > MAX_FIELDS || record.bytes.len() > MAX_RECORD_BYTES {
                return Err(CsvError::TooLarge { line: record.line });
            }
            if done {
                return self.check(record).map(|()| true);
            }
        }
    }

    /// The end of the text: the last record if one was begun.
    fn finish(&mut self, record: &mut Record) -> Result<bool, CsvError> {
        let m = &mut self.machine;
        match m.state {
            State::RecordStart | State::Comment => {
                m.state = State::RecordStart;
                return Ok(false);
            }
            State::Quoted | State::Escaped if !self.lenient => {
                return Err(CsvError::Unterminated { line: m.quote_line });
            }
            State::FieldStart => record.end_field(false),
            State::Unquoted => record.end_field(false),
            State::Quoted | State::Escaped | State::QuoteInQuoted | State::AfterQuoted => {
                record.end_field(true);
            }
        }
        m.state = State::RecordStart;
        if record.ends.len() > MAX_FIELDS {
            return Err(CsvError::TooLarge { line: record.line });
        }
        self.check(record).map(|()| true)
    }

    /// Checks the record's fields as UTF-8, each whole (a character cut by
    /// a delimiter, a quote or an escape is none, though the bytes are
    /// text once those are left out), and moves them to its text.
    fn check(&self, record: &mut Record) -> Result<(), CsvError> {
        let bad = match String::from_utf8(std::mem::take(&mut record.bytes)) {
            Ok(text) => {
                let mut cuts = record.ends.iter().chain(&record.joins);
                let cut = cuts.find(|&&end| !text.is_char_boundary(end));
                match cut {
                    None => {
                        record.text = text;
                        return Ok(());
                    }
                    Some(&end) => {
                        record.bytes = text.into_bytes();
                        end
                    }
                }
            }
            Err(err) => {
                let bad = err.utf8_error().valid_up_to();
                record.bytes = err.into_bytes();
                bad
            }
        };
        if self.input.get_ref().utf16 {
            return Err(CsvError::Utf16);
        }
        // The line of the first bad byte.
        let before = record.bytes.get(..bad).unwrap_or_default();
        Err(CsvError::NotUtf8 {
            line: record.line + breaks(before),
        })
    }
}

/// Takes a UTF-8 byte-order mark off the start of a text.
struct Bom<R> {
    inner: R,
    /// The first bytes, read to look for the mark, not given out yet.
    head: Vec<u8>,
    checked: bool,
    found: bool,
    /// It began with a UTF-16 mark instead.
    utf16: bool,
}

impl<R: Read> Read for Bom<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.checked {
            // The mark may come a byte at a time (a pipe): read until
            // there are three bytes or the text ends.
            let mut head = [0u8; 3];
            let mut n = 0;
            while n < 3 {
                match self.inner.read(&mut head[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(err) => return Err(err),
                }
            }
            self.checked = true;
            if head[..n] == *b"\xEF\xBB\xBF" {
                self.found = true;
            } else {
                self.utf16 =
                    head[..n].starts_with(b"\xFF\xFE") || head[..n].starts_with(b"\xFE\xFF");
                self.head = head[..n].to_vec();
            }
        }
        if !self.head.is_empty() {
            let n = buf.len().min(self.head.len());
            buf[..n].copy_from_slice(&self.head[..n]);
            self.head.drain(..n);
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(
        text: &[u8],
        format: &CsvFormat,
        lenient: bool,
    ) -> Result<Vec<Vec<(String, bool)>>, CsvError> {
        let mut reader = CsvReader::new(text, format, lenient);
        let mut record = Record::default();
        let mut out = Vec::new();
        while reader.read(&mut record)? {
            out.push(record.fields().map(|(f, q)| (f.to_owned(), q)).collect());
        }
        Ok(out)
    }

    fn plain(rows: &[&[&str]]) -> Vec<Vec<(String, bool)>> {
        rows.iter()
            .map(|r| r.iter().map(|f| ((*f).to_owned(), false)).collect())
            .collect()
    }

    #[test]
    fn fields_lines_and_quotes() {
        let format = CsvFormat::default();
        assert_eq!(
            records(b"a,b\n\nc,\n", &format, false).unwrap(),
            plain(&[&["a", "b"], &[], &["c", ""]])
        );
        assert_eq!(
            records(b"a\r\nb\rc", &format, false).unwrap(),
            plain(&[&["a"], &["b"], &["c"]])
        );
        let quoted = records(b"\"\",x,\"a \"\"q\"\"\nline\"\n", &format, false).unwrap();
        assert_eq!(
            quoted,
            vec![vec![
                ("".into(), true),
                ("x".into(), false),
                ("a \"q\"\nline".into(), true)
            ]]
        );
        // Every split of the text into chunks reads the same.
        let text = b"\xEF\xBB\xBFa,\"b\"\"\r\nc\"\r\n\r\nd,e\r\n";
        let whole = records(text, &format, false).unwrap();
        for cut in 0..text.len() {
            let reader = text[..cut].chain(&text[cut..]);
            let mut csv = CsvReader::new(OneByte(reader), &format, false);
            let mut record = Record::default();
            let mut out = Vec::new();
            while csv.read(&mut record).unwrap() {
                out.push(
                    record
                        .fields()
                        .map(|(f, q)| (f.to_owned(), q))
                        .collect::<Vec<_>>(),
                );
            }
            assert_eq!(out, whole, "cut at {cut}");
            assert!(csv.bom() && csv.first_crlf() == Some(true) && csv.final_newline());
        }
    }

    /// Lines are counted inside quoted fields too (`\r\n` as one break),
    /// so a record's line, and an error's, are where they are in the file.
    #[test]
    fn lines_are_counted_through_quoted_fields() {
        let escaped = CsvFormat {
            escape: Some(b'\\'),
            ..CsvFormat::default()
        };
        let text = b"a,\"1\n2\r\n3\r4\"\n\"x\\\"\ny\"\nb\n\xff\n";
        for format in [CsvFormat::default(), escaped] {
            // Read whole, and one byte at a time.
            let readers: [Box<dyn std::io::Read>; 2] =
                [Box::new(&text[..]), Box::new(OneByte(&text[..]))];
            for reader in readers {
                let mut csv = CsvReader::new(reader, &format, false);
                let mut record = Record::default();
                let mut lines = Vec::new();
                let err = loop {
                    match csv.read(&mut record) {
                        Ok(true) => lines.push(record.line()),
                        Ok(false) => panic!("read to the end"),
                        Err(err) => break err,
                    }
                };
                // Without an escape, `\"` closes the quote: `y"` is a
                // record of its own.
                let expected: &[u64] = if format.escape.is_some() {
                    &[1, 5, 7]
                } else {
                    &[1, 5, 6, 7]
                };
                assert_eq!(lines, expected);
                assert!(matches!(err, CsvError::NotUtf8 { line: 8 }), "{err}");
            }
        }
    }

    /// A reader that gives one byte at a time.
    struct OneByte<R>(R);

    impl<R: Read> Read for OneByte<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn dialects_and_refusals() {
        let format = CsvFormat {
            quote: b'\'',
            escape: Some(b'\\'),
            comment: Some(b'#'),
            ..CsvFormat::default()
        };
        let read = records(
            b"# a comment\n'it\\'s',\"x\"\n'back\\\\slash'\n",
            &format,
            false,
        )
        .unwrap();
        assert_eq!(
            read,
            vec![
                vec![("it's".into(), true), ("\"x\"".into(), false)],
                vec![("back\\slash".into(), true)]
            ]
        );
        let err = records(b"a\nb,\"open\nand on\n", &CsvFormat::default(), false).unwrap_err();
        assert!(matches!(err, CsvError::Unterminated { line: 2 }), "{err}");
        let lenient = records(b"a\nb,\"open\nand on\n", &CsvFormat::default(), true).unwrap();
        assert_eq!(lenient[1][1], ("open\nand on\n".into(), true));
        // Text after a closing quote (a quote escaped some other way) is
        // refused naming the quote's line, unless lenient.
        for text in [&b"a\n\"x\"y,z\n"[..], b"a\n\"say \\\"hi\\\"\",2\n"] {
            let err = records(text, &CsvFormat::default(), false).unwrap_err();
            assert!(matches!(err, CsvError::AfterQuote { line: 2 }), "{err}");
            assert!(err.to_string().contains("--escape"), "{err}");
        }
        let lenient = records(b"\"x\"y,z\n", &CsvFormat::default(), true).unwrap();
        assert_eq!(lenient[0][0], ("xy".into(), true));
        // A quote inside an unquoted field is read as it is, and told.
        let mut csv = CsvReader::new(
            &b"a,b\n5\" disk,c\n\"q\",d\"\n"[..],
            &CsvFormat::default(),
            false,
        );
        let mut record = Record::default();
        let mut fields = Vec::new();
        while csv.read(&mut record).unwrap() {
            fields.extend(record.fields().map(|(f, _)| f.to_owned()));
        }
        assert_eq!(fields, ["a", "b", "5\" disk", "c", "q", "d\""]);
        assert_eq!(csv.bare_quote(), Some(2));
        // A row wider than a block is refused as it is read, naming its
        // line; one as wide as a block is read.
        let wide = |fields: usize| format!("a\n{}\n", ",".repeat(fields - 1)).into_bytes();
        assert_eq!(
            records(&wide(MAX_FIELDS), &CsvFormat::default(), false).unwrap()[1].len(),
            MAX_FIELDS
        );
        let err = records(&wide(MAX_FIELDS + 1), &CsvFormat::default(), false).unwrap_err();
        assert!(matches!(err, CsvError::TooLarge { line: 2 }), "{err}");
        let err = records(b"a\nb\nc\xff\n", &CsvFormat::default(), false).unwrap_err();
        assert!(matches!(err, CsvError::NotUtf8 { line: 3 }), "{err}");
        assert!(err.to_string().contains("--encoding"));
    }

    /// Errors name the line of what is wrong: past line breaks of every
    /// kind inside quoted fields, past comment lines before the record.
    #[test]
    fn errors_name_the_line_of_the_fault() {
        let not_utf8 =
            |text: &[u8], format: &CsvFormat, lenient: bool| match records(text, format, lenient) {
                Err(CsvError::NotUtf8 { line }) => line,
                other => panic!("{other:?}"),
            };
        let format = CsvFormat::default();
        for (text, line) in [
            (&b"a\r\"x\ry\r\xff\"\rb\r"[..], 4),
            (b"a\n\"x\ny\n\xff\"\nb\n", 4),
            (b"a\r\n\"x\r\ny\r\n\xff\"\r\nb\r\n", 4),
            (b"a\n\"x\r\ny\rz\n\xff\"\n", 5),
        ] {
            assert_eq!(not_utf8(text, &format, false), line, "{text:?}");
        }
        // A character split by a closing quote, after a CR inside quotes.
        assert_eq!(not_utf8(b"a\r\"x\ry\xc3\"\xa9\r", &format, true), 3);
        let comments = CsvFormat {
            comment: Some(b'#'),
            ..CsvFormat::default()
        };
        assert_eq!(not_utf8(b"#c\n#d\n\xff\n", &comments, false), 3);
        assert_eq!(not_utf8(b"a\n#c\r\n#d\r\nb\xff\n", &comments, false), 4);
        let wide = format!("#a\n#b\n{}\n", ",".repeat(MAX_FIELDS));
        let err = records(wide.as_bytes(), &comments, false).unwrap_err();
        assert!(matches!(err, CsvError::TooLarge { line: 3 }), "{err}");
    }

    /// A character cut in two by a delimiter or a quote is no text, though
    /// the fields' bytes together are: an error naming its line, never two
    /// fields read as empty.
    #[test]
    fn a_character_split_between_fields_is_not_utf8() {
        let e_acute = "\u{e9}".as_bytes();
        let format = CsvFormat::default();
        for split in [
            [&b"a\n"[..], &e_acute[..1], b",", &e_acute[1..], b"\n"].concat(),
            [&b"a\nb\n\""[..], &e_acute[..1], b"\"", &e_acute[1..], b"\n"].concat(),
            [
                &b"a\nb\n\""[..],
                &e_acute[..1],
                b"\"\"",
                &e_acute[1..],
                b"\"\n",
            ]
            .concat(),
        ] {
            let err = records(&split, &format, false).unwrap_err();
            // (Text after a closing quote is refused first, unless lenient.)
            assert!(
                matches!(
                    err,
                    CsvError::NotUtf8 { line: 2 | 3 } | CsvError::AfterQuote { line: 3 }
                ),
                "{err}"
            );
            let lenient = records(&split, &format, true).unwrap_err();
            assert!(
                matches!(lenient, CsvError::NotUtf8 { line: 2 | 3 }),
                "{lenient}"
            );
        }
        let escaped = CsvFormat {
            escape: Some(b'\\'),
            ..CsvFormat::default()
        };
        let split = [&b"a\n\""[..], &e_acute[..1], b"\\", &e_acute[1..], b"\"\n"].concat();
        let err = records(&split, &escaped, false).unwrap_err();
        assert!(matches!(err, CsvError::NotUtf8 { line: 2 }), "{err}");
        // Whole, it is read.
        let whole = [&b"a,"[..], e_acute, b"\n"].concat();
        assert_eq!(
            records(&whole, &format, false).unwrap(),
            plain(&[&["a", "\u{e9}"]])
        );
    }
}
