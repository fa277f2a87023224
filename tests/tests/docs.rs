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
