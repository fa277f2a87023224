//! Documentation generated from the contracts in `hdl/`: the register map
//! (`hdl/REGISTERS.md`) must equal what the register table renders. Bless an intended change
//! with `INSTA_UPDATE=always cargo test -p partita-tests` and review the diff.

use partita_tests::{blessing, repo};

#[test]
fn register_documentation_is_generated_from_the_table() {
    let path = repo().join("hdl/REGISTERS.md");
    let want = partita_hdl::regs::markdown();
    if blessing() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "hdl/REGISTERS.md is not what the register table renders; regenerate it with \
         `INSTA_UPDATE=always cargo test -p partita-tests --test docs`"
    );
    // Every register of the table is documented, with its offset.
    for r in partita_hdl::regs::TABLE {
        assert!(
            have.contains(&format!("| {} |", r.name)),
            "{} missing",
            r.name
        );
        assert!(
            have.contains(&format!("0x{:03X}", r.offset)),
            "{} offset missing",
            r.name
        );
    }
}

/// The part of README.md between `<!-- NAME -->` and `<!-- /NAME -->` must be `want`, what
/// `source` renders; blessing rewrites it.
fn readme_section_is(name: &str, want: &str, source: &str) {
    // The tests run in parallel and blessing rewrites the one README: one at a time.
    static README: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = README.lock().unwrap_or_else(|e| e.into_inner());
    let path = repo().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (open, close) = (format!("<!-- {name} -->\n"), format!("<!-- /{name} -->"));
    let start = readme
        .find(&open)
        .unwrap_or_else(|| panic!("README has no {open} marker"))
        + open.len();
    let end = readme[start..].find(&close).expect("and its end marker") + start;
    if blessing() {
        let new = format!("{}{}{}", &readme[..start], want, &readme[end..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    assert!(
        readme[start..end] == *want,
        "README.md's {name} table is not what {source} renders; regenerate it with \
         `INSTA_UPDATE=always cargo test -p partita-tests --test docs`"
    );
}

#[test]
fn limits_table_is_generated_from_the_code() {
    let want = partita_codegen::limits::markdown_table();
    readme_section_is("limits", &want, "codegen/src/limits.rs");
}

#[test]
fn boards_table_is_generated_from_the_code() {
    let want = partita_codegen::boards::markdown_table();
    readme_section_is("boards", &want, "codegen/src/boards.rs");
}
