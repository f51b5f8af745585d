//! Tags: `CreateTags`, `DeleteTags`, `DescribeTags`.

use gureum_types::model::{Filter, Tag, TagDescription};
use gureum_types::ApiError;

use crate::action::{take_page, Page};
use crate::ops::{Op, Resource};
use crate::params::Params;
use crate::xml::Xml;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    CreateTags {
        resources: Vec<String>,
        tags: Vec<Tag>,
    },
    /// A tag with no value deletes the key whatever its value; with a value, only if it matches.
    DeleteTags {
        resources: Vec<String>,
        tags: Vec<DeleteTag>,
    },
    DescribeTags {
        filters: Vec<Filter>,
        page: Page,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteTag {
    pub key: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Response {
    CreateTags,
    DeleteTags,
    DescribeTags {
        tags: Vec<TagDescription>,
        next_token: Option<String>,
    },
}

impl Resource for Action {
    type Response = Response;

    const OPS: &'static [Op<Action>] = &[
        Op::write("CreateTags", parse_create_tags),
        Op::write("DeleteTags", parse_delete_tags),
        Op::read("DescribeTags", |p| {
            Ok(Action::DescribeTags {
                filters: p.take_filters()?,
                page: take_page(p, 5, 1000)?,
            })
        }),
    ];

    fn name(&self) -> &'static str {
        match self {
            Action::CreateTags { .. } => "CreateTags",
            Action::DeleteTags { .. } => "DeleteTags",
            Action::DescribeTags { .. } => "DescribeTags",
        }
    }
}

fn parse_create_tags(p: &mut Params) -> Result<Action, ApiError> {
    let resources = p.take_list("ResourceId")?;
    if resources.is_empty() {
        return Err(ApiError::missing_parameter("ResourceId"));
    }
    let tags = p.take_tags("Tag")?;
    if tags.is_empty() {
        return Err(ApiError::missing_parameter("Tag"));
    }
    Ok(Action::CreateTags { resources, tags })
}

fn parse_delete_tags(p: &mut Params) -> Result<Action, ApiError> {
    let resources = p.take_list("ResourceId")?;
    if resources.is_empty() {
        return Err(ApiError::missing_parameter("ResourceId"));
    }
    let tags = p
        .take_struct_list("Tag")?
        .into_iter()
        .map(|mut t| {
            let key = t.take("Key").unwrap_or_default();
            let value = t.take("Value");
            t.finish()?;
            Ok(DeleteTag { key, value })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Action::DeleteTags { resources, tags })
}

impl Response {
    pub(crate) fn write(&self, x: &mut Xml) {
        match self {
            Response::CreateTags | Response::DeleteTags => {
                x.bool("return", true);
            }
            Response::DescribeTags { tags, next_token } => {
                x.set("tagSet", tags, |x, t| {
                    x.leaf("resourceId", &t.resource_id)
                        .leaf("resourceType", &t.resource_type)
                        .leaf("key", &t.key)
                        .leaf("value", &t.value);
                });
                x.leaf_opt("nextToken", next_token.as_deref());
            }
        }
    }
}
