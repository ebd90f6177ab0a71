//! Numbered progress: one line per step (what is happening, then its key result), with optional
//! indented detail lines below it.

use anyhow::{Context, Result};
use std::future::Future;
use std::io::Write;
use std::time::Instant;

/// What a step produced, and what to print about it.
pub struct Done<T> {
    pub value: T,
    /// The key result, printed on the step's line.
    pub summary: String,
    /// Printed indented below the step's line.
    pub details: Vec<String>,
}

impl<T> Done<T> {
    pub fn new(value: T, summary: impl Into<String>) -> Done<T> {
        Done { value, summary: summary.into(), details: Vec::new() }
    }

    pub fn detail(mut self, line: impl Into<String>) -> Done<T> {
        self.details.push(line.into());
        self
    }

    pub fn details(mut self, lines: impl IntoIterator<Item = String>) -> Done<T> {
        self.details.extend(lines);
        self
    }
}

#[derive(Default)]
pub struct Progress {
    steps: usize,
}

impl Progress {
    /// Prints the step's title, runs it, and prints its result (or FAILED and returns the error, with the
    /// step named in it).
    pub async fn step<T>(&mut self, title: &str, work: impl Future<Output = Result<Done<T>>>) -> Result<T> {
        self.steps += 1;
        let number = self.steps;
        print!("{number:>2}. {title} ... ");
        let _ = std::io::stdout().flush();
        let started = Instant::now();
        let result = work.await;
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(done) => {
                println!("{} ({seconds:.1} s)", done.summary);
                for line in &done.details {
                    println!("      {line}");
                }
                Ok(done.value)
            }
            Err(error) => {
                println!("FAILED ({seconds:.1} s)");
                Err(error).with_context(|| format!("step {number} ({title})"))
            }
        }
    }

    /// How many steps ran.
    pub fn steps(&self) -> usize {
        self.steps
    }
}
