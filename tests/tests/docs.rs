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

/// README.md's table of limits is the one `codegen/src/limits.rs` renders.
#[test]
fn limits_table_is_generated_from_the_code() {
    let path = repo().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (open, close) = ("<!-- limits -->\n", "<!-- /limits -->");
    let start = readme
        .find(open)
        .expect("README has a <!-- limits --> marker")
        + open.len();
    let end = readme[start..].find(close).expect("and its end marker") + start;
    let want = partita_codegen::limits::markdown_table();
    if blessing() {
        let new = format!("{}{}{}", &readme[..start], want, &readme[end..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    assert!(
        readme[start..end] == want,
        "README.md's limits table is not what codegen/src/limits.rs renders; regenerate it with \
         `INSTA_UPDATE=always cargo test -p partita-tests --test docs`"
    );
}
