//! The order of the messages a launch exchanges, decided from the plan before anything
//! is forked, and enforced: the parent accepts only the next expected message (or a
//! failure), so a stage that skips or repeats a step is an error, not a hang or a guess.
//!
//! A new container, as the parent sees it:
//!
//! ```text
//! [NeedIdMaps]     when the container makes a user namespace (from whoever makes it)
//! [InitPid]        when an intermediate forks the init
//! RunRuntimeHooks  the init's mounts are done
//! [SeccompListener] when a rule notifies an agent
//! Ready
//! ```
//!
//! `Failed` and `HookFailed` may come instead of any of them.
use crate::message::ToParent;
use crate::plan::ContainerPlan;

/// A message the parent waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    IdMaps,
    InitPid,
    RuntimeHooks,
    SeccompListener,
    Ready,
}

impl Step {
    fn accepts(self, message: &ToParent) -> bool {
        matches!(
            (self, message),
            (Step::IdMaps, ToParent::NeedIdMaps)
                | (Step::InitPid, ToParent::InitPid(_))
                | (Step::RuntimeHooks, ToParent::RunRuntimeHooks)
                | (Step::SeccompListener, ToParent::SeccompListener)
                | (Step::Ready, ToParent::Ready)
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Step::IdMaps => "NeedIdMaps",
            Step::InitPid => "InitPid",
            Step::RuntimeHooks => "RunRuntimeHooks",
            Step::SeccompListener => "SeccompListener",
            Step::Ready => "Ready",
        }
    }
}

/// The messages a container launch sends the parent, in order.
pub fn container_steps(plan: &ContainerPlan) -> Vec<Step> {
    let mut steps = Vec::new();
    if plan.creates_user_namespace() {
        steps.push(Step::IdMaps);
    }
    if plan.needs_intermediate() {
        steps.push(Step::InitPid);
    }
    steps.push(Step::RuntimeHooks);
    if plan.seccomp.as_ref().is_some_and(|f| f.listener.is_some()) {
        steps.push(Step::SeccompListener);
    }
    steps.push(Step::Ready);
    steps
}

/// Checks that `message` is the one `expected` (or a failure, which ends the launch).
pub fn check(expected: Step, message: &ToParent) -> Result<(), String> {
    match message {
        ToParent::Failed(_) | ToParent::HookFailed(_) => Ok(()),
        m if expected.accepts(m) => Ok(()),
        m => Err(format!(
            "the container's stage sent {} where the protocol expects {}",
            m.name(),
            expected.name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_expected_message_or_a_failure_passes() {
        assert!(check(Step::IdMaps, &ToParent::NeedIdMaps).is_ok());
        assert!(check(Step::Ready, &ToParent::Failed("x".into())).is_ok());
        let e = check(Step::RuntimeHooks, &ToParent::Ready).unwrap_err();
        assert!(
            e.contains("sent Ready where the protocol expects RunRuntimeHooks"),
            "{e}"
        );
        assert!(check(Step::InitPid, &ToParent::InitPid(7)).is_ok());
    }
}
