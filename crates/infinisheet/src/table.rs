//! Cells as text: how a value is shown, reading a range into rows, and
//! CSV import and export.

use infinisheet_engine::{
    Cell, CellRange, CellRef, CellState, CellValue, EditError, Spreadsheet, ViewportError,
};

/// How a cell's value is written in a table or a CSV file: numbers in
/// their shortest exact form, `TRUE`/`FALSE`, error values as `#DIV/0!`,
/// text as it is; an empty value or a blank cell is empty text.
pub fn value_text(value: &CellValue) -> String {
    match value {
        CellValue::Empty => String::new(),
        CellValue::Text(text) => text.clone(),
        CellValue::Number(number) => number.to_string(),
        CellValue::Boolean(true) => "TRUE".to_owned(),
        CellValue::Boolean(false) => "FALSE".to_owned(),
        CellValue::Error(error) => error.as_str().to_owned(),
    }
}

/// Error of importing a CSV file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file is not valid CSV (or cannot be read).
    #[error("reading CSV: {0}")]
    Csv(#[from] csv::Error),
    /// The data does not fit the sheet (more than 2^32 rows or columns).
    #[error("the data does not fit in the sheet from {origin}")]
    TooLarge {
        /// Where the import started.
        origin: CellRef,
    },
    /// An edit failed; the rows before it are in the sheet.
    #[error("writing to the sheet: {0}")]
    Edit(#[from] EditError),
}

/// What an import wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Rows read.
    pub rows: u64,
    /// The widest row.
    pub columns: u64,
    /// Cells written (empty fields write nothing).
    pub cells: u64,
}

/// Reads CSV from `reader` into `sheet` with its first field at `origin`,
/// `batch` cells per log append; each field is parsed as a person's typed
/// value ([`CellValue::parse`]), empty fields are skipped. `progress` hears
/// the bytes read so far after each append.
///
/// # Errors
///
/// [`ImportFailed`]: why the import stopped ([`ImportError`]) and how many
/// rows and cells it had appended by then, which stay in the sheet.
pub async fn import_csv<R: std::io::Read>(
    sheet: &Spreadsheet,
    reader: R,
    origin: CellRef,
    batch: usize,
    progress: impl FnMut(u64),
) -> Result<ImportReport, ImportFailed> {
    let mut committed = ImportReport::default();
    match import_rows(sheet, reader, origin, batch, progress, &mut committed).await {
        Ok(report) => Ok(report),
        Err(error) => Err(ImportFailed { committed, error }),
    }
}

/// An import that stopped part way: what it had written to the log by
/// then, and why it stopped.
#[derive(Debug, thiserror::Error)]
#[error(
    "{error}; the first {} rows ({} cells) were imported before it stopped",
    committed.rows,
    committed.cells
)]
pub struct ImportFailed {
    /// The rows and cells in the sheet's log: every cell of these rows was
    /// appended, and nothing after them — unless the import stopped on a
    /// storage error, whose batch may have landed too.
    pub committed: ImportReport,
    /// Why the import stopped.
    #[source]
    pub error: ImportError,
}

async fn import_rows<R: std::io::Read>(
    sheet: &Spreadsheet,
    reader: R,
    origin: CellRef,
    batch: usize,
    mut progress: impl FnMut(u64),
    committed: &mut ImportReport,
) -> Result<ImportReport, ImportError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let mut report = ImportReport::default();
    let mut cells = Vec::with_capacity(batch);
    let too_large = || ImportError::TooLarge { origin };
    let mut record = csv::StringRecord::new();
    while csv.read_record(&mut record)? {
        let row = u32::try_from(u64::from(origin.row) + report.rows).map_err(|_| too_large())?;
        for (i, field) in record.iter().enumerate() {
            if field.is_empty() {
                continue;
            }
            let column =
                u32::try_from(u64::from(origin.column) + i as u64).map_err(|_| too_large())?;
            cells.push((
                CellRef::new(row, column),
                Cell::new(CellValue::parse(field)),
            ));
        }
        report.rows += 1;
        report.columns = report.columns.max(record.len() as u64);
        if cells.len() >= batch.max(1) {
            let count = cells.len() as u64;
            sheet.set_cells(std::mem::take(&mut cells)).await?;
            report.cells += count;
            *committed = report;
            progress(csv.position().byte());
        }
    }
    if !cells.is_empty() {
        let count = cells.len() as u64;
        sheet.set_cells(cells).await?;
        report.cells += count;
    }
    *committed = report;
    progress(csv.position().byte());
    Ok(report)
}

/// The cells of `range` as rows of values (`None` for a blank cell),
/// loading the tiles it covers a band of rows at a time.
///
/// # Errors
///
/// [`ViewportError`] if a snapshot tile cannot be read.
pub async fn read_range(
    sheet: &Spreadsheet,
    range: CellRange,
) -> Result<Vec<Vec<Option<Cell>>>, ViewportError> {
    let mut rows = Vec::new();
    for area in bands(range, 100) {
        sheet.set_viewport(area).await?;
        let content = sheet.content();
        for row in area.rows() {
            let cells = area
                .columns()
                .map(|column| match content.cell(row, column) {
                    CellState::Set(cell) => Some(cell),
                    _ => None,
                })
                .collect();
            rows.push(cells);
        }
    }
    Ok(rows)
}

/// `range` cut into bands of at most `rows` rows, top to bottom.
fn bands(range: CellRange, rows: u32) -> impl Iterator<Item = CellRange> {
    let step = rows.max(1);
    let mut top = Some(range.first.row);
    std::iter::from_fn(move || {
        let first = top?;
        let last = first.saturating_add(step - 1).min(range.last.row);
        top = (last < range.last.row).then(|| last + 1);
        Some(CellRange::new(
            CellRef::new(first, range.first.column),
            CellRef::new(last, range.last.column),
        ))
    })
}

/// The range from A1 to the last row and column holding a cell, if any.
pub fn used_range(sheet: &Spreadsheet) -> Option<CellRange> {
    let content = sheet.content();
    let (rows, columns) = (content.row_count(), content.column_count());
    if rows == 0 || columns == 0 {
        return None;
    }
    let last = |count: u64| u32::try_from(count - 1).unwrap_or(u32::MAX);
    Some(CellRange::new(
        CellRef::new(0, 0),
        CellRef::new(last(rows), last(columns)),
    ))
}

/// Error of exporting CSV.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// A snapshot tile cannot be read.
    #[error(transparent)]
    Read(#[from] ViewportError),
    /// Writing the CSV failed.
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
}

/// Writes `range` of `sheet` (its used range if `None`) as CSV: one line a
/// row, values as [`value_text`] shows them, trailing blank cells of a row
/// left out. Returns the rows written.
///
/// # Errors
///
/// [`ExportError`].
pub async fn export_csv<W: std::io::Write>(
    sheet: &Spreadsheet,
    writer: W,
    range: Option<CellRange>,
) -> Result<u64, ExportError> {
    let mut csv = csv::WriterBuilder::new().flexible(true).from_writer(writer);
    let Some(range) = range.or_else(|| used_range(sheet)) else {
        csv.flush().map_err(csv::Error::from)?;
        return Ok(0);
    };
    let mut written = 0;
    for area in bands(range, 1_000) {
        for row in read_range(sheet, area).await? {
            let used = row.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
            let fields: Vec<String> = row[..used]
                .iter()
                .map(|cell| {
                    cell.as_ref()
                        .map(|c| value_text(&c.value))
                        .unwrap_or_default()
                })
                .collect();
            if fields.is_empty() {
                csv.write_record([""])?;
            } else {
                csv.write_record(&fields)?;
            }
            written += 1;
        }
    }
    csv.flush().map_err(csv::Error::from)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_cover_a_range_once() {
        let range: CellRange = "B3:D12".parse().unwrap_or_else(|e| panic!("{e}"));
        let cut: Vec<String> = bands(range, 4).map(|b| b.to_string()).collect();
        assert_eq!(cut, ["B3:D6", "B7:D10", "B11:D12"]);
        let one: CellRange = "A1".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bands(one, 100).count(), 1);
        let bottom = CellRange::new(CellRef::new(u32::MAX - 1, 0), CellRef::new(u32::MAX, 0));
        assert_eq!(bands(bottom, 1).count(), 2);
    }
}
