mod common;
use common::*;

#[test]
fn default_policy_runs_a_shell_in_every_mode() {
    for mode in modes() {
        let r = sh(mode, &[], "echo hello; id -u");
        assert_eq!(r.ok(), "hello\n1000\n", "{mode:?}");
        assert_eq!(r.outcome_status(), "exited");
    }
}
