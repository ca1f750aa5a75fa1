//! When a container that exited starts again, and after how long.
use std::time::Duration;

use crate::RestartPolicy;

/// Whether a container that exited with `code` restarts, having restarted `count` times;
/// `stopped`: a user stopped it (`stop`, `kill`, `rm -f`), which no policy overrides.
pub fn should_restart(policy: RestartPolicy, code: i32, count: u32, stopped: bool) -> bool {
    if stopped {
        return false;
    }
    match policy {
        RestartPolicy::No => false,
        RestartPolicy::OnFailure(max) => code != 0 && (max == 0 || count < max),
        RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
    }
}

/// Docker's back-off: 100 ms, doubled after each restart, at most a minute; back to
/// 100 ms once the container ran for 10 s.
pub fn next_delay(previous: Option<Duration>, ran_for: Duration) -> Duration {
    const FIRST: Duration = Duration::from_millis(100);
    const MOST: Duration = Duration::from_secs(60);
    match previous {
        Some(previous) if ran_for < Duration::from_secs(10) => (previous * 2).min(MOST),
        _ => FIRST,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_decide_as_dockers() {
        assert!(!should_restart(RestartPolicy::No, 1, 0, false));
        assert!(should_restart(RestartPolicy::OnFailure(2), 1, 1, false));
        assert!(!should_restart(RestartPolicy::OnFailure(2), 1, 2, false));
        assert!(!should_restart(RestartPolicy::OnFailure(0), 0, 0, false));
        assert!(should_restart(RestartPolicy::Always, 0, 100, false));
        assert!(!should_restart(RestartPolicy::Always, 0, 0, true));
    }

    #[test]
    fn the_delay_doubles_to_a_minute_and_resets() {
        let short = Duration::from_secs(1);
        let mut d = next_delay(None, short);
        assert_eq!(d, Duration::from_millis(100));
        for _ in 0..20 {
            d = next_delay(Some(d), short);
        }
        assert_eq!(d, Duration::from_secs(60));
        assert_eq!(
            next_delay(Some(d), Duration::from_secs(11)),
            Duration::from_millis(100)
        );
    }
}
