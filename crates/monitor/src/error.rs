//! The monitor's error: what went wrong, and the exit status that reports it.
/// Why the monitor could not do its job, and the exit status that says so (127 for a
/// program not found, 126 for one that cannot run, 125 for everything else, as Docker).
#[derive(Debug)]
pub struct MonitorError(pub String, pub i32);

impl<E: std::fmt::Display> From<E> for MonitorError {
    fn from(e: E) -> Self {
        MonitorError(e.to_string(), 125)
    }
}

/// A runtime error with the exit status Docker gives it.
pub fn runtime_error(e: bulwark_runtime::RuntimeError) -> MonitorError {
    let code = match &e {
        bulwark_runtime::RuntimeError::Launch(bulwark_sandbox::LaunchError::Setup(step)) => {
            match step.exit_code() {
                1 => 125,
                code => code,
            }
        }
        // The init reports a failed exec in the words StepError::Exec gives it.
        bulwark_runtime::RuntimeError::Launch(bulwark_sandbox::LaunchError::Child(message))
            if message.starts_with("exec: ") =>
        {
            if message.ends_with("executable file not found in $PATH")
                || message.ends_with("no such file or directory")
            {
                127
            } else {
                126
            }
        }
        _ => 125,
    };
    MonitorError(e.to_string(), code)
}
