//! Sections of the Markdown report: a `## ` heading and the lines up to the
//! next one. Parts measured by other commands than `bench report` (the
//! long-form pass, live sessions, uploads under load) are spliced into the
//! report, and kept when it is written anew.

/// The section of `document` whose heading line starts with `heading`, up to
/// the next `## ` heading (exclusive), if there is one.
pub fn find(document: &str, heading: &str) -> Option<String> {
    let lines: Vec<&str> = document.lines().collect();
    let (start, end) = bounds(&lines, heading)?;
    Some(lines[start..end].iter().map(|l| format!("{l}\n")).collect())
}

/// `document` with the section whose heading starts with `heading` replaced by
/// `section`, or `section` put before `## Reproduce`, or appended.
pub fn splice(document: &str, heading: &str, section: &str) -> String {
    let lines: Vec<&str> = document.lines().collect();
    let (start, end) = bounds(&lines, heading).unwrap_or_else(|| {
        let at = lines
            .iter()
            .position(|l| *l == "## Reproduce")
            .unwrap_or(lines.len());
        (at, at)
    });
    let mut out = String::new();
    for line in &lines[..start] {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(section);
    for line in &lines[end..] {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The line range of the section headed by `heading`.
fn bounds(lines: &[&str], heading: &str) -> Option<(usize, usize)> {
    let start = lines.iter().position(|l| l.starts_with(heading))?;
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with("## "))
        .map_or(lines.len(), |i| start + 1 + i);
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADING: &str = "## Long form";

    #[test]
    fn splice_replaces_the_section_or_puts_it_before_reproduce() {
        let section = format!("{HEADING}\n\nnew\n\n");
        let fresh = "# B\n\n## 9. Load\n\nx\n\n## Reproduce\n\nrun\n";
        let once = splice(fresh, HEADING, &section);
        assert_eq!(
            once,
            format!("# B\n\n## 9. Load\n\nx\n\n{HEADING}\n\nnew\n\n## Reproduce\n\nrun\n")
        );
        let again = splice(&once, HEADING, &format!("{HEADING}: newer\n\nnewer\n\n"));
        assert_eq!(
            again,
            format!("# B\n\n## 9. Load\n\nx\n\n{HEADING}: newer\n\nnewer\n\n## Reproduce\n\nrun\n")
        );
        assert_eq!(splice("", HEADING, &section), section);
    }

    #[test]
    fn find_takes_a_section_to_the_next_heading() {
        let document = "# B\n\n## Live [rt1]\n\nrows\n### Sub\n\nmore\n## Reproduce\n";
        assert_eq!(
            find(document, "## Live").as_deref(),
            Some("## Live [rt1]\n\nrows\n### Sub\n\nmore\n")
        );
        assert_eq!(find(document, "## Uploads"), None);
    }
}
