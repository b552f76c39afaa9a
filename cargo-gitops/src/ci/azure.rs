//! Azure Pipelines: the logging commands through which a step reports back, an error issue
//! (`##vso[task.logissue]`) and a Markdown summary on the run's Extensions tab
//! (`##vso[task.uploadsummary]`). Its variables are read with every other CI's in `detect`.

use std::path::Path;

use crate::error::Error;

/// A message escaped for a logging command: one line, `%` written `%AZP25`.
fn escape(message: &str) -> String {
    message
        .replace('%', "%AZP25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// An error as a logging command, so that the run's summary lists it.
pub fn error_command(message: &str) -> String {
    format!("##vso[task.logissue type=error]{}", escape(message))
}

/// Writes `markdown` to a file in the agent's temporary folder and returns the command that
/// tells the agent to attach it to the run.
pub fn upload_summary(temp_dir: &Path, markdown: &str) -> Result<String, Error> {
    let path = temp_dir.join(format!("cargo-gitops-summary-{}.md", std::process::id()));
    crate::files::write_whole(&path, markdown.as_bytes())?;
    Ok(format!(
        "##vso[task.uploadsummary]{}",
        escape(&path.display().to_string())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_stay_on_one_line() {
        assert_eq!(
            error_command("a\nb 100%"),
            "##vso[task.logissue type=error]a%0Ab 100%AZP25"
        );
    }
}
