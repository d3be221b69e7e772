//! CSV fidelity: `export(import(f))` gives back the same bytes, for
//! excerpts of real files (vega-datasets, Debian's distro-info,
//! worldcitiespop) and a generated file of every tricky form, in every
//! dialect the commands take.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet::CellValue;
use infinisheet::blob_store::BlobStore;
use infinisheet::engine::CellState;
use infinisheet::engine::{SheetOptions, Spreadsheet};
use infinisheet::table::{CsvFormat, ImportOptions, Types, export_csv, import_csv};
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
use std::sync::Arc;

/// vega-datasets `airports.csv`: codes such as `00M` and `0E0`, numbers
/// with trailing digits a number would drop.
const AIRPORTS: &str = "iata,name,city,state,country,latitude,longitude
00M,Thigpen,Bay Springs,MS,USA,31.95376472,-89.23450472
06A,Moton  Municipal,Tuskegee,AL,USA,32.46047167,-85.68003611
0E0,Moriarty,Moriarty,NM,USA,34.98560639,-106.0094661
0E8,Crownpoint,Crownpoint,NM,USA,35.71765889,-108.2015961
";

/// vega-datasets `stocks.csv`, which has no line break after its last line.
const STOCKS: &str = "symbol,date,price
MSFT,Jan 1 2000,39.81
MSFT,Feb 1 2000,36.35
AAPL,Mar 1 2010,223.02";

/// Debian's `/usr/share/distro-info/ubuntu.csv`: `4.10`, `6.06 LTS`,
/// empty trailing fields.
const UBUNTU: &str = "version,codename,series,created,release,eol,eol-server,eol-esm,eol-legacy
4.10,Warty Warthog,warty,2004-03-05,2004-10-20,2006-04-30
6.06 LTS,Dapper Drake,dapper,2005-10-12,2006-06-01,2009-07-14,2011-06-01
8.10,Intrepid Ibex,intrepid,2008-04-24,2008-10-30,2010-04-30
";

/// Debian's `debian.csv`: `2.0`, `3.0`.
const DEBIAN: &str = "version,codename,series,created,release,eol,eol-lts,eol-elts
1.1,Buzz,buzz,1993-08-16,1996-06-17,1997-06-05
2.0,Hamm,hamm,1997-06-05,1998-07-24,2000-03-09
3.0,Woody,woody,2000-08-15,2002-07-19,2006-06-30
";

/// worldcitiespop: region codes `06`, empty populations, `47.0`-style
/// coordinates.
const CITIES: &str = "Country,City,AccentCity,Region,Population,Latitude,Longitude
ad,aixas,Aixàs,06,,42.4833333,1.4666667
ad,andorra la vella,Andorra la Vella,07,20430,42.5,1.5166667
fr,paris,Paris,A8,2110694,48.866667,2.333333
us,lat,Lat,47,,47.0,-91.9475000
";

/// Every tricky form in one file.
fn tricky() -> String {
    [
        "text,number,kept,empty,odd",
        "06,42,4.10,,0E0",
        "\"a, b\",-0,2.0,,+5",
        "\"say \"\"hi\"\"\",1e300,12345678901234567890,,.5",
        "\"two\nlines\",0.30000000000000004,-91.9475000,,1E5",
        "   ,5e-324,\u{a0},,\u{a0}x\u{a0}",
        "TRUE,FALSE,true,,False",
        "#N/A,#DIV/0!,#n/a,,#OOPS!",
        "'007,1e21,123456789012345680000,,inf",
        "",
        "\"\"",
        ",x",
        ",,,,",
        "short",
        "日本語,ünïcödé,emoji 🎉,,tab\there",
    ]
    .join("\n")
        + "\n"
}

async fn round_trip(text: &[u8], types: Types, format: CsvFormat) -> (Vec<u8>, Spreadsheet) {
    let log = Arc::new(MemoryEventLog::new());
    let dir = MemoryBlobStore::new().root();
    let sheet = Spreadsheet::open(log, dir, SheetOptions::default())
        .await
        .unwrap();
    let options = ImportOptions {
        types,
        format,
        batch: 7, // several blocks
        ..ImportOptions::default()
    };
    let report = import_csv(&sheet, text, &options, |_| {}).await.unwrap();
    sheet.sync().await.unwrap();
    let written = CsvFormat {
        crlf: report.crlf,
        final_newline: report.final_newline,
        bom: report.bom,
        ..format
    };
    let mut out = Vec::new();
    export_csv(&sheet, &mut out, None, &written).await.unwrap();
    (out, sheet)
}

/// The sheet as CSV in the default format.
async fn exported(sheet: &Spreadsheet) -> String {
    // An import appends to the log alone: the content reads it on a sync.
    sheet.sync().await.unwrap();
    let mut out = Vec::new();
    export_csv(sheet, &mut out, None, &CsvFormat::default())
        .await
        .unwrap();
    String::from_utf8(out).unwrap()
}

fn same(out: &[u8], text: &[u8], what: &str) {
    assert!(
        out == text,
        "{what}:\n--- in\n{}\n--- out\n{}",
        String::from_utf8_lossy(text),
        String::from_utf8_lossy(out)
    );
}

#[tokio::test]
async fn real_files_come_back_byte_for_byte() {
    for (name, text) in [
        ("airports", AIRPORTS),
        ("stocks", STOCKS),
        ("ubuntu", UBUNTU),
        ("debian", DEBIAN),
        ("cities", CITIES),
    ] {
        for types in [Types::Auto, Types::Text] {
            let (out, _) = round_trip(text.as_bytes(), types, CsvFormat::default()).await;
            same(&out, text.as_bytes(), name);
        }
    }
}

#[tokio::test]
async fn every_tricky_form_comes_back_in_every_dialect() {
    let text = tricky();
    let (out, sheet) = round_trip(text.as_bytes(), Types::Auto, CsvFormat::default()).await;
    same(&out, text.as_bytes(), "tricky");
    // Values where the text is a value's own, text elsewhere.
    let content = sheet.content();
    let value = |row, column| match content.cell(row, column) {
        CellState::Set(cell) => cell.value,
        other => panic!("{other:?}"),
    };
    assert_eq!(value(1, 0), CellValue::Text("06".into()));
    assert_eq!(value(1, 1), CellValue::Number(42.0));
    assert_eq!(value(1, 2), CellValue::Text("4.10".into()));
    assert_eq!(value(1, 3), CellValue::Empty);
    assert_eq!(value(3, 1), CellValue::Number(1e300));
    assert_eq!(value(6, 0), CellValue::Boolean(true));
    assert_eq!(value(6, 2), CellValue::Text("true".into()));
    assert_eq!(
        value(8, 0),
        CellValue::Text("'007".into()),
        "a file's apostrophe is kept"
    );
    assert_eq!(
        content.cell(9, 0),
        CellState::Blank,
        "an empty line is a row of no cells"
    );

    // CRLF, no final line break, a semicolon, Latin-1, all text.
    let crlf = text.replace('\n', "\r\n");
    let crlf = crlf.replace("two\r\nlines", "two\nlines");
    let (out, _) = round_trip(crlf.as_bytes(), Types::Auto, CsvFormat::default()).await;
    same(&out, crlf.as_bytes(), "crlf");
    let cut = text.trim_end_matches('\n');
    let (out, _) = round_trip(cut.as_bytes(), Types::Auto, CsvFormat::default()).await;
    same(&out, cut.as_bytes(), "no final line break");
    let semicolons = "a;b,c;\"d;e\"\n06;1.50;;x\n";
    let format = CsvFormat {
        delimiter: b';',
        ..CsvFormat::default()
    };
    let (out, _) = round_trip(semicolons.as_bytes(), Types::Auto, format).await;
    same(&out, semicolons.as_bytes(), "semicolons");
    let latin1 = b"caf\xe9,na\xefve,\xa0\n1,2,3\n";
    let format = CsvFormat {
        encoding: CsvFormat::encoding("latin1").unwrap(),
        ..CsvFormat::default()
    };
    let (out, sheet) = round_trip(latin1, Types::Auto, format).await;
    same(&out, latin1, "latin-1");
    assert_eq!(
        sheet.content().cell(0, 0),
        CellState::Set(infinisheet::Cell::new(CellValue::Text("café".into())))
    );
    let (out, sheet) = round_trip(text.as_bytes(), Types::Text, CsvFormat::default()).await;
    same(&out, text.as_bytes(), "all text");
    assert_eq!(
        sheet.content().cell(1, 1),
        CellState::Set(infinisheet::Cell::new(CellValue::Text("42".into())))
    );
}

#[tokio::test]
async fn replace_clears_what_the_file_does_not_hold() {
    let log = Arc::new(MemoryEventLog::new());
    let dir = MemoryBlobStore::new().root();
    let sheet = Spreadsheet::open(log, dir, SheetOptions::default())
        .await
        .unwrap();
    let first = ImportOptions::default();
    import_csv(&sheet, &b"a,b,c\nd,e,f\ng,h,i\n"[..], &first, |_| {})
        .await
        .unwrap();
    // Without --replace, an empty field still writes an empty cell.
    import_csv(&sheet, &b"x,,z\n"[..], &first, |_| {})
        .await
        .unwrap();
    assert_eq!(exported(&sheet).await, "x,,z\nd,e,f\ng,h,i\n");
    let replace = ImportOptions {
        replace: true,
        ..ImportOptions::default()
    };
    import_csv(&sheet, &b"1,2\n"[..], &replace, |_| {})
        .await
        .unwrap();
    assert_eq!(exported(&sheet).await, "1,2\n");
    assert_eq!(
        (sheet.content().row_count(), sheet.content().column_count()),
        (1, 2)
    );
}

/// The whole of Debian's distro-info files, where the machine has them
/// (every Debian does; elsewhere the excerpts above stand in).
#[tokio::test]
async fn distro_info_files_come_back_whole() {
    let Ok(dir) = std::fs::read_dir("/usr/share/distro-info") else {
        eprintln!("no /usr/share/distro-info here; the excerpts cover its forms");
        return;
    };
    for entry in dir {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            let text = std::fs::read(&path).unwrap();
            let (out, _) = round_trip(&text, Types::Auto, CsvFormat::default()).await;
            same(&out, &text, &path.display().to_string());
        }
    }
}

/// A file in the style of rust-csv's `strange.csv`: quotes escaped with a
/// backslash inside quoted fields, and a backslash escaped by another.
const STRANGE: &str = r#"name,said
"Alice","She said \"hi\", then left"
"Bob","a back\\slash"
Carol,plain
"#;

/// `fields` as a line of `format`: quoted where a field needs it (the
/// delimiter, the quote, the escape), `None` a quoted empty field (`""`).
fn line(fields: &[Option<&str>], format: &CsvFormat) -> String {
    let (quote, delimiter) = (char::from(format.quote), char::from(format.delimiter));
    let escape = format.escape.map(char::from);
    fields
        .iter()
        .map(|field| match field {
            None => format!("{quote}{quote}"),
            Some(text)
                if text.contains([quote, delimiter])
                    || escape.is_some_and(|e| text.contains(e)) =>
            {
                let inner: String = text
                    .chars()
                    .flat_map(|c| match escape {
                        Some(e) if c == quote || c == e => vec![e, c],
                        None if c == quote => vec![c, c],
                        _ => vec![c],
                    })
                    .collect();
                format!("{quote}{inner}{quote}")
            }
            Some(text) => (*text).to_owned(),
        })
        .collect::<Vec<_>>()
        .join(&delimiter.to_string())
        + "\n"
}

/// CSV as people write it, each form in every dialect: quoted empty
/// fields (empty text) beside unquoted ones (empty cells), a line of only
/// `""`, a byte-order mark, another quote character, backslash escapes,
/// CRLF, and numbers kept with the formats that print them back.
#[tokio::test]
async fn csv_as_people_write_it_comes_back_in_every_dialect() {
    let dialects: Vec<(&str, CsvFormat)> = vec![
        ("comma", CsvFormat::default()),
        (
            "semicolon",
            CsvFormat {
                delimiter: b';',
                ..CsvFormat::default()
            },
        ),
        (
            "tab",
            CsvFormat {
                delimiter: b'\t',
                ..CsvFormat::default()
            },
        ),
        (
            "single quotes",
            CsvFormat {
                quote: b'\'',
                ..CsvFormat::default()
            },
        ),
        (
            "backslash",
            CsvFormat {
                escape: Some(b'\\'),
                ..CsvFormat::default()
            },
        ),
        (
            "latin-1",
            CsvFormat {
                encoding: CsvFormat::encoding("latin1").unwrap(),
                ..CsvFormat::default()
            },
        ),
    ];
    for (name, format) in dialects {
        let d = char::from(format.delimiter);
        let both = format!("x{d} y");
        let text = [
            line(
                &[
                    Some("a"),
                    None,
                    Some(""),
                    Some(&both),
                    Some("say \"it's\" \\ here"),
                ],
                &format,
            ),
            line(&[None], &format),
            line(&[Some(""), Some("")], &format),
            line(
                &[
                    Some("06"),
                    Some("34.0900000"),
                    Some("1,234.50"),
                    Some("12.5%"),
                    Some("-4.10"),
                ],
                &format,
            ),
        ]
        .concat();
        for (variant, bytes) in [
            ("lf", text.clone().into_bytes()),
            ("crlf", text.replace('\n', "\r\n").into_bytes()),
            (
                "bom",
                [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(),
            ),
        ] {
            if name == "latin-1" && variant == "bom" {
                continue; // a UTF-8 mark is UTF-8's
            }
            for types in [Types::Auto, Types::Text, Types::Numbers] {
                let what = format!("{name}, {variant}, {types:?}");
                let (out, sheet) = round_trip(&bytes, types, format).await;
                same(&out, &bytes, &what);
                let content = sheet.content();
                let cell = |row, column| match content.cell(row, column) {
                    CellState::Set(cell) => cell,
                    other => panic!("{what}: {other:?} at {row},{column}"),
                };
                assert_eq!(
                    cell(0, 1).value,
                    CellValue::Text(String::new()),
                    "{what}: \"\" is empty text"
                );
                assert_eq!(
                    cell(0, 2).value,
                    CellValue::Empty,
                    "{what}: an unquoted empty field"
                );
                assert_eq!(cell(0, 3).value, CellValue::Text(both.clone()), "{what}");
                assert_eq!(
                    cell(0, 4).value,
                    CellValue::Text("say \"it's\" \\ here".into()),
                    "{what}"
                );
                assert_eq!(
                    cell(1, 0).value,
                    CellValue::Text(String::new()),
                    "{what}: a line of \"\""
                );
                assert_eq!(cell(2, 1).value, CellValue::Empty, "{what}");
                if types == Types::Numbers {
                    assert_eq!(cell(3, 0), infinisheet::Cell::from(6.0).with_format("00"));
                    assert_eq!(
                        cell(3, 1),
                        infinisheet::Cell::from(34.09).with_format("0.0000000")
                    );
                    assert_eq!(
                        cell(3, 2),
                        infinisheet::Cell::from(1234.5).with_format("#,##0.00")
                    );
                    assert_eq!(
                        cell(3, 3),
                        infinisheet::Cell::from(0.125).with_format("0.0%")
                    );
                    assert_eq!(
                        cell(3, 4),
                        infinisheet::Cell::from(-4.1).with_format("0.00")
                    );
                } else {
                    assert_eq!(cell(3, 0).value, CellValue::Text("06".into()), "{what}");
                }
            }
        }
    }
    // strange.csv's backslash escapes: quotes only where needed, so the
    // fields quoted without need come back bare, the rest as they were.
    let format = CsvFormat {
        escape: Some(b'\\'),
        ..CsvFormat::default()
    };
    let (out, sheet) = round_trip(STRANGE.as_bytes(), Types::Auto, format).await;
    let content = sheet.content();
    let text = |row, column| {
        content
            .cell(row, column)
            .cell()
            .map(|c| c.value.to_string())
    };
    assert_eq!(text(1, 1).as_deref(), Some("She said \"hi\", then left"));
    assert_eq!(text(2, 1).as_deref(), Some("a back\\slash"));
    let want = "name,said\nAlice,\"She said \\\"hi\\\", then left\"\nBob,\"a back\\\\slash\"\nCarol,plain\n";
    same(&out, want.as_bytes(), "strange");
}

/// Comment lines are left out; a quote never closed is refused naming its
/// line (or taken as it is, leniently); a file that is not UTF-8 names
/// the encoding option.
#[tokio::test]
async fn comments_unclosed_quotes_and_other_encodings() {
    let log = Arc::new(MemoryEventLog::new());
    let sheet = Spreadsheet::open(log, MemoryBlobStore::new().root(), SheetOptions::default())
        .await
        .unwrap();
    let comments = ImportOptions {
        format: CsvFormat {
            comment: Some(b'#'),
            ..CsvFormat::default()
        },
        ..ImportOptions::default()
    };
    let file = b"# made by hand\na,b\n# more\n\"#not\",c\n";
    import_csv(&sheet, &file[..], &comments, |_| {})
        .await
        .unwrap();
    sheet.sync().await.unwrap();
    let mut out = Vec::new();
    export_csv(&sheet, &mut out, None, &comments.format)
        .await
        .unwrap();
    same(&out, b"a,b\n\"#not\",c\n", "comments");

    let open = b"a,b\nc,\"never closed\nd,e\nf\n";
    let strict = import_csv(&sheet, &open[..], &ImportOptions::default(), |_| {})
        .await
        .unwrap_err();
    let said = strict.to_string();
    assert!(
        said.contains("line 2") && said.contains("--lenient"),
        "{said}"
    );
    assert_eq!(
        strict.committed.rows, 0,
        "the batch with the open quote is not appended"
    );
    let lenient = ImportOptions {
        lenient: true,
        replace: true,
        ..ImportOptions::default()
    };
    let report = import_csv(&sheet, &open[..], &lenient, |_| {})
        .await
        .unwrap();
    assert_eq!(report.rows, 2);
    sheet.sync().await.unwrap();
    assert_eq!(
        sheet
            .content()
            .cell(1, 1)
            .cell()
            .map(|c| c.value.to_string())
            .as_deref(),
        Some("never closed\nd,e\nf\n")
    );

    let said = import_csv(
        &sheet,
        &b"caf\xe9,1\n"[..],
        &ImportOptions::default(),
        |_| {},
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        said.contains("line 1 is not UTF-8") && said.contains("--encoding"),
        "{said}"
    );
}

/// An import that stops part way asks for the snapshot of what it
/// appended (its last entry would have), so the rows that landed are not
/// left for the next edit to ask for.
#[tokio::test]
async fn a_stopped_import_asks_for_the_snapshot_of_what_landed() {
    use infinisheet::event_log::{EventLogExt, KnownSnapshot, QueryEnd, QueryStart};
    let (log, sheet) = memory_sheet().await;
    let options = ImportOptions {
        batch: 2, // a row a block
        ..ImportOptions::default()
    };
    let file = b"a,b\nc,d\ne,f\ng,\"never closed\nh\n";
    let failed = import_csv(&sheet, &file[..], &options, |_| {})
        .await
        .unwrap_err();
    assert!(failed.committed.rows >= 2, "{failed}");
    let all = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    assert!(all.entries.len() >= 2);
    let pending: Vec<bool> = all
        .entries
        .iter()
        .map(|e| e.metadata.pending.is_some())
        .collect();
    assert_eq!(pending.last(), Some(&true), "{pending:?}");
    assert_eq!(pending.iter().filter(|p| **p).count(), 1, "{pending:?}");
}

/// A long import asks for a snapshot as it goes, not only at its end: a
/// worker writes them while it goes on, and an import killed part way
/// leaves at most `snapshot_every` cells without a job. Before, only the
/// last entry asked.
#[tokio::test]
async fn a_long_import_asks_for_snapshots_as_it_goes() {
    use infinisheet::event_log::{EventLogExt, KnownSnapshot, QueryEnd, QueryStart};
    let (log, sheet) = memory_sheet().await;
    let options = ImportOptions {
        batch: 4, // two rows a block
        snapshot_every: 10,
        ..ImportOptions::default()
    };
    let file: String = (0..20).map(|row| format!("{row},x\n")).collect();
    let report = import_csv(&sheet, file.as_bytes(), &options, |_| {})
        .await
        .unwrap();
    assert_eq!(report.cells, 40);
    let all = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    // Ten blocks of four cells (the last row alone, in a block of its
    // own): an ask once ten cells or more went in since the last, and at
    // the end.
    let asking: Vec<usize> = all
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.metadata.pending.is_some())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(all.entries.len(), 11);
    assert_eq!(asking, [2, 5, 8, 10]);
}

/// A sheet on a memory log and blob store, and its log.
async fn memory_sheet() -> (Arc<MemoryEventLog>, Spreadsheet) {
    let log = Arc::new(MemoryEventLog::new());
    let sheet = Spreadsheet::open(
        log.clone(),
        MemoryBlobStore::new().root(),
        SheetOptions::default(),
    )
    .await
    .unwrap();
    (log, sheet)
}

/// A column exported alone writes a blank or empty cell as an empty line
/// (a row of no fields, blank again when imported) and only empty text as
/// `""`: the two never come out the same.
#[tokio::test]
async fn a_column_alone_keeps_blank_and_empty_text_apart() {
    let (_, sheet) = round_trip(b"a,,x\nb,\"\",y\nc,,\n", Types::Auto, CsvFormat::default()).await;
    let column = "B1:B3".parse().unwrap();
    for whole_rows in [false, true] {
        let format = CsvFormat {
            whole_rows,
            ..CsvFormat::default()
        };
        let mut out = Vec::new();
        export_csv(&sheet, &mut out, Some(column), &format)
            .await
            .unwrap();
        same(&out, b"\n\"\"\n\n", "column B");
        // And back: blank, empty text, blank.
        let (_, again) = round_trip(&out, Types::Auto, CsvFormat::default()).await;
        let cells = again.read("A1:A3".parse().unwrap()).await.unwrap();
        let values: Vec<_> = cells
            .iter()
            .map(|row| row.first().cloned().flatten().map(|c| c.value))
            .collect();
        assert_eq!(values, [None, Some(CellValue::Text(String::new())), None]);
    }
}

/// A file read in a one-byte encoding that begins as UTF-8 with letters
/// beyond ASCII is most likely UTF-8: the report says so (the CLI tells
/// the user), and only then.
#[tokio::test]
async fn a_utf8_file_read_as_latin1_is_told() {
    let latin1 = CsvFormat {
        encoding: CsvFormat::encoding("latin1").unwrap(),
        ..CsvFormat::default()
    };
    for (text, told) in [
        ("name\nJos\u{e9}\n".as_bytes(), true),
        (b"name\nJos\xe9\n", false),
        (b"name\nJose\n", false),
    ] {
        let (_log, sheet) = memory_sheet().await;
        let options = ImportOptions {
            format: latin1,
            ..ImportOptions::default()
        };
        let report = import_csv(&sheet, text, &options, |_| {}).await.unwrap();
        assert_eq!(report.looks_utf8, told, "{}", String::from_utf8_lossy(text));
    }
    // Read as UTF-8, nothing is told.
    let (_, sheet) = memory_sheet().await;
    let report = import_csv(
        &sheet,
        "Jos\u{e9}\n".as_bytes(),
        &ImportOptions::default(),
        |_| {},
    )
    .await
    .unwrap();
    assert!(!report.looks_utf8);
}

/// Bytes a one-byte or legacy encoding cannot read are refused with their
/// own line, not the line their record begins on.
#[tokio::test]
async fn bytes_not_in_the_encoding_name_their_line() {
    let (_log, sheet) = memory_sheet().await;
    let options = ImportOptions {
        format: CsvFormat {
            encoding: CsvFormat::encoding("shift_jis").unwrap(),
            ..CsvFormat::default()
        },
        ..ImportOptions::default()
    };
    let text = b"a\n\"x\ny\n\x81\x20\"\nb\n";
    let failed = import_csv(&sheet, &text[..], &options, |_| {})
        .await
        .unwrap_err();
    assert!(failed.to_string().contains("line 4"), "{failed}");
}
