//! User-facing diagnostics: every problem with a plan or one of its files becomes an [`Issue`]
//! with a message, what is allowed, and (where it has one) the line and column in the plan.

use std::ops::Range;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};
use thiserror::Error;
use toml::de::{DeTable, DeValue};

/// One problem found in a plan or a file it names.
#[derive(Debug, Error, Diagnostic, Clone)]
#[error("{message}")]
pub struct Issue {
    pub message: String,
    #[help]
    pub help: Option<String>,
    #[label(collection)]
    pub labels: Vec<LabeledSpan>,
}

impl Issue {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            help: None,
            labels: Vec::new(),
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn at(mut self, span: Option<Range<usize>>, label: impl Into<String>) -> Self {
        if let Some(r) = span {
            self.labels.push(LabeledSpan::new_with_span(
                Some(label.into()),
                SourceSpan::from(r),
            ));
        }
        self
    }
}

/// Every problem found in one plan, with the plan's text so that each is shown in place.
/// One problem is shown on its own; several are listed under a count.
#[derive(Debug, Error, Diagnostic)]
#[error("{message}")]
#[diagnostic(code(partita::plan))]
pub struct PlanError {
    pub message: String,
    #[help]
    pub help: Option<String>,
    #[label(collection)]
    pub labels: Vec<LabeledSpan>,
    #[source_code]
    pub src: NamedSource<String>,
    #[related]
    pub issues: Vec<Issue>,
}

impl PlanError {
    pub fn new(name: &str, text: &str, mut issues: Vec<Issue>) -> Self {
        let src = NamedSource::new(name, text.to_string());
        if issues.len() == 1 {
            let i = issues.remove(0);
            return Self {
                message: i.message,
                help: i.help,
                labels: i.labels,
                src,
                issues,
            };
        }
        Self {
            message: format!("{name}: {} errors in the plan", issues.len()),
            help: None,
            labels: Vec::new(),
            src,
            issues,
        }
    }

    /// Every issue, whether shown on its own or under a count.
    pub fn messages(&self) -> Vec<&str> {
        if self.issues.is_empty() {
            vec![&self.message]
        } else {
            self.issues.iter().map(|i| i.message.as_str()).collect()
        }
    }
}

/// Errors of the codegen crate.
#[derive(Debug, Error, Diagnostic)]
pub enum Error {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Plan(Box<PlanError>),
    /// A problem that is not tied to a place in the plan (a file that cannot be read, ...).
    #[error("{message}")]
    #[diagnostic(code(partita::input))]
    Input {
        message: String,
        #[help]
        help: Option<String>,
    },
}

impl Error {
    pub fn input(message: impl Into<String>, help: impl Into<String>) -> Self {
        Error::Input {
            message: message.into(),
            help: Some(help.into()),
        }
    }
}

/// Finds where a key or value sits in the plan text, so that checks made after
/// deserialization can still point at the line and column.
pub struct SpanIndex<'a> {
    root: Option<DeTable<'a>>,
}

impl<'a> SpanIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let root = DeTable::parse(text).ok().map(|t| t.into_inner());
        Self { root }
    }

    /// Span of the value at `path` (table keys, or array indices written as numbers).
    /// Falls back to the nearest enclosing item that exists.
    pub fn value(&self, path: &[&str]) -> Option<Range<usize>> {
        self.walk(path, false)
    }

    /// Span of the key at `path`, for "unexpected" or "conflicting" keys.
    pub fn key(&self, path: &[&str]) -> Option<Range<usize>> {
        self.walk(path, true)
    }

    fn walk(&self, path: &[&str], want_key: bool) -> Option<Range<usize>> {
        let mut table: &DeTable<'a> = self.root.as_ref()?;
        let mut array: Option<&[toml::Spanned<DeValue<'a>>]> = None;
        let mut best: Option<Range<usize>> = None;
        for (i, part) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            let value = if let Some(items) = array.take() {
                let Some(item) = part.parse::<usize>().ok().and_then(|i| items.get(i)) else {
                    return best;
                };
                best = Some(item.span());
                item.get_ref()
            } else {
                let Some((k, v)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == *part) else {
                    return best;
                };
                best = Some(if last && want_key { k.span() } else { v.span() });
                v.get_ref()
            };
            match value {
                DeValue::Table(t) => table = t,
                DeValue::Array(a) => array = Some(a),
                _ if !last => return best,
                _ => {}
            }
        }
        best
    }
}
