//! `pull` and `push`, with Docker's progress and summary lines.
use bulwark_engine::{Engine, ImageName, Platform};

use crate::args::{PullArgs, PushArgs};
use crate::progress::{Mode, Progress};
use crate::{is_terminal, runtime, CliError};

fn mode(quiet: bool) -> Mode {
    match (quiet, is_terminal(&std::io::stdout())) {
        (true, _) => Mode::Quiet,
        (false, true) => Mode::Terminal,
        (false, false) => Mode::Lines,
    }
}

pub fn pull(engine: &Engine, args: &PullArgs) -> Result<u8, CliError> {
    let name = ImageName::parse(&args.name)?;
    let platform = match &args.platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let progress = Progress::new(mode(args.quiet));
    if name.tag_defaulted() {
        progress.say("Using default tag: latest");
    }
    let pulled = runtime()?.block_on(engine.pull(&name, &platform, &|e| progress.pull(e)));
    progress.finish();
    let pulled = pulled?;
    progress.say(&format!("Digest: {}", pulled.digest));
    let shown = name.familiar();
    if pulled.updated || pulled.new_image {
        progress.say(&format!("Status: Downloaded newer image for {shown}"));
    } else {
        progress.say(&format!("Status: Image is up to date for {shown}"));
    }
    println!("{}", name.canonical());
    Ok(0)
}

/// `pull` for `run` and `create`: the image's lines on stderr, stdout left to the container.
pub fn pull_quietly(engine: &Engine, args: &PullArgs) -> Result<(), bulwark_engine::EngineError> {
    let name = ImageName::parse(&args.name)?;
    let runtime = runtime().map_err(|e| bulwark_engine::EngineError::Other(e.to_string()))?;
    let pulled = runtime.block_on(engine.pull(&name, &Platform::host(), &|_| {}))?;
    if !args.quiet {
        eprintln!("Digest: {}", pulled.digest);
        eprintln!("Status: Downloaded newer image for {}", name.familiar());
    }
    Ok(())
}

pub fn push(engine: &Engine, args: &PushArgs) -> Result<u8, CliError> {
    let name = ImageName::parse(&args.name)?;
    let progress = Progress::new(mode(args.quiet));
    let names = if args.all_tags {
        if name.tag().is_some() && !name.tag_defaulted() {
            return Err(CliError::Usage(format!(
                "tag can't be used with --all-tags/-a ({})",
                args.name
            )));
        }
        let tags = engine.tags_of(&name)?;
        if tags.is_empty() {
            return Err(bulwark_engine::EngineError::NotLocal(name.familiar()).into());
        }
        tags
    } else {
        if name.tag_defaulted() {
            progress.say("Using default tag: latest");
        }
        vec![name]
    };
    let rt = runtime()?;
    for name in names {
        let pushed = rt.block_on(engine.push(&name, &|e| progress.push(e)));
        progress.finish();
        let digest = pushed?;
        if args.quiet {
            println!("{}@{digest}", name.full_repository());
        }
    }
    Ok(0)
}
