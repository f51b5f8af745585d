//! A small manual driver for the crate (the real CLI lives in the `gureum` binary):
//!
//! ```text
//! cargo run -p gureum-image --example image -- build debian-12 [--cache DIR] [--mirror URL] [--refresh] [--plain|--quiet]
//! cargo run -p gureum-image --example image -- lookup debian-12 [--cache DIR] [--mirror URL]
//! cargo run -p gureum-image --example image -- import FILE DEST [--user NAME]
//! ```

use gureum_image::{recipe, BuildOptions, ImageCache, ProgressMode, DEFAULT_CACHE_DIR};
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let cache_dir = value("--cache").unwrap_or_else(|| DEFAULT_CACHE_DIR.to_string());
    let cache = ImageCache::open(&PathBuf::from(cache_dir)).unwrap_or_else(|e| fail(&e));
    let opts = BuildOptions {
        mirror: value("--mirror"),
        refresh: flag("--refresh"),
        progress: if flag("--quiet") {
            ProgressMode::Quiet
        } else if flag("--plain") {
            ProgressMode::Plain
        } else {
            ProgressMode::Auto
        },
    };
    let start = Instant::now();
    match (args.first().map(String::as_str), args.get(1), args.get(2)) {
        (Some(cmd @ ("build" | "lookup")), Some(name), _) => {
            let r = recipe(name).unwrap_or_else(|| fail(&format!("no recipe {name}")));
            let found = if cmd == "build" {
                Some(cache.build(r, &opts).unwrap_or_else(|e| fail(&e)))
            } else {
                cache.lookup(r, &opts).unwrap_or_else(|e| fail(&e))
            };
            println!("{found:#?}");
        }
        (Some("import"), Some(file), Some(dest)) => {
            let image = cache
                .import(
                    &PathBuf::from(file),
                    &PathBuf::from(dest),
                    value("--user").as_deref(),
                )
                .unwrap_or_else(|e| fail(&e));
            println!("{image:#?}");
        }
        _ => fail(&"usage: image build|lookup RECIPE [--cache DIR] | import FILE DEST"),
    }
    eprintln!("took {:.3}s", start.elapsed().as_secs_f64());
}

fn fail(e: &dyn std::fmt::Display) -> ! {
    eprintln!("error: {e}");
    std::process::exit(1)
}
