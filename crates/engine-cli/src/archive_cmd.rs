//! `save` and `load`.
use std::io::Write;

use bulwark_engine::{ArchiveFormat, Engine};

use crate::args::{LoadArgs, SaveArgs, SaveFormat};
use crate::{is_terminal, CliError};

pub fn save(engine: &Engine, args: &SaveArgs) -> Result<u8, CliError> {
    let format = match args.format {
        SaveFormat::DockerArchive => ArchiveFormat::Docker,
        SaveFormat::OciArchive => ArchiveFormat::Oci,
    };
    let Some(path) = &args.output else {
        if is_terminal(&std::io::stdout()) {
            return Err(CliError::Usage(
                "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
            ));
        }
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        engine.save(&args.images, format, &mut out)?;
        out.flush().map_err(CliError::io("stdout"))?;
        return Ok(0);
    };
    // Written to a temporary name beside it and renamed: a failed save leaves no file.
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.bulwark-{}", std::process::id()));
    let file =
        std::fs::File::create(&tmp).map_err(CliError::io(format!("creating {}", tmp.display())))?;
    let mut out = std::io::BufWriter::new(file);
    let written = engine
        .save(&args.images, format, &mut out)
        .map_err(CliError::from)
        .and_then(|()| {
            let file = out
                .into_inner()
                .map_err(|e| CliError::io(path.display().to_string())(e.into_error()))?;
            file.sync_all()
                .map_err(CliError::io(path.display().to_string()))
        })
        .and_then(|()| {
            std::fs::rename(&tmp, path)
                .map_err(CliError::io(format!("renaming to {}", path.display())))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map(|()| 0)
}

pub fn load(engine: &Engine, args: &LoadArgs) -> Result<u8, CliError> {
    let loaded = match &args.input {
        Some(path) => {
            let file = std::fs::File::open(path)
                .map_err(CliError::io(format!("opening {}", path.display())))?;
            engine.load(std::io::BufReader::new(file))?
        }
        None => {
            if is_terminal(&std::io::stdin()) {
                return Err(CliError::Usage(
                    "requested load from stdin, but stdin is empty".into(),
                ));
            }
            engine.load(std::io::stdin().lock())?
        }
    };
    for name in &loaded.names {
        println!("Loaded image: {name}");
    }
    for id in &loaded.untagged {
        println!("Loaded image ID: {id}");
    }
    Ok(0)
}
