//! Writes the JSON Schemas of the provisioner's request and response to `docs/schema/`.
//! Run from anywhere: `cargo run -p grant-model --example write-schema`.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (file, schema) in grant_model::schema::FILES {
        let text = serde_json::to_string_pretty(&schema()).expect("a schema serialises") + "\n";
        std::fs::write(root.join(file), text)?;
        println!("wrote {file}");
    }
    Ok(())
}
