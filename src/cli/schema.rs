//! `boyong schema`: the playbook format's JSON Schema on stdout, for editors' YAML
//! support (and `docs/playbook.schema.json`, checked for drift).

use boyong::playbook;

use super::error::{CliError, Result};

/// `boyong schema`.
pub fn schema() -> Result {
    let s = serde_json::to_string_pretty(playbook::json_schema())
        .map_err(|e| CliError::failed(format!("boyong schema: {e}")))?;
    println!("{s}");
    Ok(())
}
