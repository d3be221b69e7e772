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
    let written = CsvFormat {
        crlf: report.crlf,
        final_newline: report.final_newline,
        ..format
    };
    let mut out = Vec::new();
    export_csv(&sheet, &mut out, None, &written).await.unwrap();
    (out, sheet)
}

/// The sheet as CSV in the default format.
async fn exported(sheet: &Spreadsheet) -> String {
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
