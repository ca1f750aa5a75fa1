//! Runs every scenario with every runtime through one engine, prints the pass table, and
//! fails the test where bulwark-runtime fails a scenario that runc passes.
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::cli::{Cli, Verdict};
use crate::paths::target_dir;

/// A named check, run once per runtime.
pub struct Scenario {
    pub name: &'static str,
    pub check: Box<dyn Fn(&Cli) -> Verdict>,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// A scenario from a closure.
pub fn scenario(name: &'static str, check: impl Fn(&Cli) -> Verdict + 'static) -> Scenario {
    Scenario {
        name,
        check: Box::new(check),
    }
}

#[derive(Debug)]
enum Outcome {
    Pass,
    Skip(String),
    Fail(String),
}

impl Outcome {
    fn cell(&self) -> String {
        match self {
            Outcome::Pass => "pass".to_owned(),
            Outcome::Skip(why) => format!("skip ({why})"),
            Outcome::Fail(why) => format!("**FAIL**: {}", why.replace('|', "\\|")),
        }
    }
}

fn outcome(cli: &Cli, scenario: &Scenario) -> Outcome {
    match catch_unwind(AssertUnwindSafe(|| (scenario.check)(cli))) {
        Ok(Ok(())) => Outcome::Pass,
        Ok(Err(why)) => match why.strip_prefix("skip: ") {
            Some(reason) => Outcome::Skip(reason.to_owned()),
            None => Outcome::Fail(why),
        },
        Err(panic) => Outcome::Fail(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".to_owned()),
        ),
    }
}

/// Runs each scenario with each runtime in `clis` (runc first, the reference), writes
/// the table to `<target>/engines/<engine>.md` and stdout, and panics listing every
/// scenario runc passes and another runtime does not.
pub fn run_matrix(engine: &str, clis: &[Cli], scenarios: &[Scenario]) {
    let mut rows = Vec::new();
    for scenario in scenarios {
        let outcomes: Vec<Outcome> = clis.iter().map(|cli| outcome(cli, scenario)).collect();
        eprintln!("{engine}: {}: {outcomes:?}", scenario.name);
        rows.push((scenario.name, outcomes));
    }
    let mut table = format!("### {engine}\n\n| scenario |");
    for cli in clis {
        table += &format!(" {} |", cli.runtime);
    }
    table += &format!("\n|---|{}\n", "---|".repeat(clis.len()));
    for (name, outcomes) in &rows {
        table += &format!("| {name} |");
        for o in outcomes {
            table += &format!(" {} |", o.cell());
        }
        table += "\n";
    }
    let passed = |i: usize| {
        rows.iter()
            .filter(|(_, o)| matches!(o[i], Outcome::Pass))
            .count()
    };
    table += "\n";
    for (i, cli) in clis.iter().enumerate() {
        table += &format!("{}: {} of {} passed. ", cli.runtime, passed(i), rows.len());
    }
    table += "\n";
    println!("{table}");
    let dir = target_dir().join("engines");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{engine}.md")), &table).unwrap();

    let regressions: Vec<String> = rows
        .iter()
        .filter(|(_, o)| matches!(o[0], Outcome::Pass))
        .flat_map(|(name, o)| {
            clis.iter()
                .zip(o)
                .skip(1)
                .filter(|(_, o)| !matches!(o, Outcome::Pass))
                .map(move |(cli, o)| format!("{name} with {}: {}", cli.runtime, o.cell()))
        })
        .collect();
    assert!(
        regressions.is_empty(),
        "{engine}: scenarios runc passes and another runtime does not:\n{}\n\n{table}",
        regressions.join("\n")
    );
    assert!(
        passed(0) * 2 > rows.len(),
        "{engine}: runc itself passed only {} of {} scenarios; the engine or the machine is broken:\n{table}",
        passed(0),
        rows.len()
    );
}
