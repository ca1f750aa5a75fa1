//! `images`, `image inspect`, `rmi`, `tag`, `image prune` and `system df`.
use std::io::BufRead;

use bulwark_engine::{Engine, EngineError, ImageFilter, ImageName, ImageSummary, Removed};
use serde_json::{json, Map, Value};

use crate::args::{ImagesArgs, InspectArgs, PruneArgs, RmiArgs, TagArgs};
use crate::format::{go_json_pretty, go_time, human_size, since, tabulate, Template};
use crate::CliError;

const TABLE: &str = "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const TABLE_DIGESTS: &str =
    "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

/// A column's title in `images` tables.
fn title(field: &str) -> String {
    match field {
        "ID" => "IMAGE ID".into(),
        "CreatedSince" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        "SharedSize" => "SHARED SIZE".into(),
        "UniqueSize" => "UNIQUE SIZE".into(),
        "VirtualSize" => "SIZE".into(),
        other => other.to_uppercase(),
    }
}

/// One `images` row as Docker's formatter sees it (every value a string).
fn image_row(image: &ImageSummary, no_trunc: bool) -> Map<String, Value> {
    let id = if no_trunc {
        image.id.to_string()
    } else {
        image.id.hex()[..12].to_owned()
    };
    let row = json!({
        "Containers": "N/A",
        "CreatedAt": go_time(image.created),
        "CreatedSince": since(image.created),
        "Digest": image.digest,
        "ID": id,
        "Repository": image.repository,
        "SharedSize": "N/A",
        "Size": human_size(image.size, 3),
        "Tag": image.tag,
        "UniqueSize": "N/A",
        "VirtualSize": human_size(image.size, 4),
    });
    match row {
        Value::Object(map) => map,
        _ => unreachable!("json! of an object is an object"),
    }
}

pub fn images(engine: &Engine, args: &ImagesArgs) -> Result<u8, CliError> {
    let mut filters: Vec<ImageFilter> = args
        .filter
        .iter()
        .map(|f| ImageFilter::parse(f))
        .collect::<Result<_, _>>()?;
    if let Some(reference) = &args.reference {
        ImageName::parse(reference)?;
        filters.push(ImageFilter::Reference(reference.clone()));
    }
    let rows: Vec<Map<String, Value>> = engine
        .images_matching(&filters)?
        .iter()
        .map(|image| image_row(image, args.no_trunc))
        .collect();
    let default = if args.digests { TABLE_DIGESTS } else { TABLE };
    let template = match (&args.format, args.quiet) {
        (_, true) => Template::parse("{{.ID}}", default)?,
        (Some(format), false) => Template::parse(format, default)?,
        (None, false) => Template::parse("table", default)?,
    };
    if let Some(first) = rows.first() {
        template.check(first, "images")?;
    } else {
        template.check(&image_row(&placeholder(), false), "images")?;
    }
    let mut lines = Vec::new();
    if template.table {
        lines.push(template.header(&title));
    }
    lines.extend(rows.into_iter().map(|r| template.render(&Value::Object(r))));
    if template.table {
        print!("{}", tabulate(&lines));
    } else {
        for line in lines {
            println!("{line}");
        }
    }
    Ok(0)
}

/// A row with every field, to check a template against when there are no images.
fn placeholder() -> ImageSummary {
    ImageSummary {
        id: bulwark_engine::Digest::of(b""),
        repository: String::new(),
        tag: String::new(),
        digest: String::new(),
        created: None,
        size: 0,
        containers: 0,
    }
}

pub fn inspect(engine: &Engine, args: &InspectArgs) -> Result<u8, CliError> {
    let template = args
        .format
        .as_deref()
        .map(|f| Template::parse(f, ""))
        .transpose()?;
    let mut found = Vec::new();
    let mut failed = Vec::new();
    for what in &args.images {
        match engine.inspect(what) {
            Ok(value) => found.push(value),
            Err(e) => failed.push(e),
        }
    }
    match template {
        Some(t) => {
            for value in &found {
                println!("{}", t.render(value));
            }
        }
        None => println!("{}", go_json_pretty(&Value::Array(found))),
    }
    report_all(failed)
}

/// Prints each error; fails when there was one.
fn report_all(errors: Vec<EngineError>) -> Result<u8, CliError> {
    if errors.is_empty() {
        return Ok(0);
    }
    for e in errors {
        eprintln!("Error: {e}");
    }
    Err(CliError::Reported)
}

pub fn rmi(engine: &Engine, args: &RmiArgs) -> Result<u8, CliError> {
    let mut failed = Vec::new();
    for what in &args.images {
        match engine.remove_image(what, args.force) {
            Ok(removed) => removed.iter().for_each(|r| println!("{r}")),
            Err(e) => failed.push(e),
        }
    }
    report_all(failed)
}

pub fn tag(engine: &Engine, args: &TagArgs) -> Result<u8, CliError> {
    engine.tag(&args.source, &args.target)?;
    Ok(0)
}

pub fn prune(engine: &Engine, args: &PruneArgs) -> Result<u8, CliError> {
    if !args.force {
        let warning = if args.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        print!("{warning}\nAre you sure you want to continue? [y/N] ");
        std::io::Write::flush(&mut std::io::stdout()).map_err(CliError::io("stdout"))?;
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(CliError::io("stdin"))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
            return Ok(0);
        }
    }
    let (removed, bytes) = engine.prune(args.all)?;
    if !removed.is_empty() {
        println!("Deleted Images:");
        for r in &removed {
            match r {
                Removed::Untagged(n) => println!("untagged: {n}"),
                Removed::Deleted(d) => println!("deleted: {d}"),
            }
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(bytes, 3));
    Ok(0)
}

pub fn df(engine: &Engine) -> Result<u8, CliError> {
    let usage = engine.disk_usage()?;
    let reclaimable = |bytes: u64, of: u64| match of {
        0 => human_size(bytes, 4),
        _ => format!("{} ({}%)", human_size(bytes, 4), 100 * bytes / of),
    };
    let lines = vec![
        "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE".to_owned(),
        format!(
            "Images\t{}\t{}\t{}\t{}",
            usage.images,
            usage.active_images,
            human_size(usage.images_size, 4),
            reclaimable(usage.images_reclaimable, usage.images_size)
        ),
        format!(
            "Containers\t{}\t{}\t{}\t{}",
            usage.containers,
            usage.containers,
            human_size(usage.containers_size, 4),
            human_size(0, 4)
        ),
        "Local Volumes\t0\t0\t0B\t0B".to_owned(),
        "Build Cache\t0\t0\t0B\t0B".to_owned(),
    ];
    print!("{}", tabulate(&lines));
    Ok(0)
}
