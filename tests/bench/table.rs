//! [`Table`]: a GitHub Markdown table as the benchmark report writes it.

use std::fmt;

/// A Markdown table: a header row and rows of cells, every column with
/// GitHub's default alignment (`|---|`).
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headings and no rows.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row of cells, written as given.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }
}

impl fmt::Display for Table {
    /// `| a | b |`, `|---|---|`, then one such line per row, each line ending
    /// in a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line =
            |f: &mut fmt::Formatter<'_>, cells: &[String]| writeln!(f, "| {} |", cells.join(" | "));
        line(f, &self.header)?;
        writeln!(f, "|{}", "---|".repeat(self.header.len()))?;
        for row in &self.rows {
            line(f, row)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn header_separator_and_rows_render_as_github_markdown() {
        let mut table = Table::new(["what", "seconds"]);
        table.row(["load".to_owned(), format!("{:.3}", 0.12345)]);
        table.row(["state", "0.010"]);
        assert_eq!(
            table.to_string(),
            "| what | seconds |\n|---|---|\n| load | 0.123 |\n| state | 0.010 |\n"
        );
    }

    #[test]
    fn a_table_without_rows_is_its_header_and_separator() {
        let table = Table::new(["a", "b", "c"]);
        assert_eq!(table.to_string(), "| a | b | c |\n|---|---|---|\n");
    }

    #[test]
    fn cells_are_written_as_given() {
        let mut table = Table::new(["clip"]);
        table.row(["**all**"]);
        table.row([""]);
        assert_eq!(table.to_string(), "| clip |\n|---|\n| **all** |\n|  |\n");
    }
}
