//! Tags on any resource: AWS's limits (50 per resource, keys of 1 to 128 characters, values
//! of at most 256, the `aws:` prefix reserved), `TagSpecifications` on create calls, and the
//! `CreateTags`/`DeleteTags`/`DescribeTags` actions over the resource registry.

use std::collections::HashSet;

use gureum_ec2::ops::tags::DeleteTag;
use gureum_ec2::ops::tags::{Action, Response};
use gureum_ec2::Page;
use gureum_types::model::{Filter, Tag, TagDescription, TagSpecification};
use gureum_types::{ApiError, ErrorCode, ResourceKind};

use crate::describe::{self, Describable};
use crate::{Cloud, CoreError, CoreResult, Ctx};

pub const MAX_TAGS_PER_RESOURCE: usize = 50;

/// Check tags as AWS does before anything is written.
pub fn validate(tags: &[Tag]) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    for t in tags {
        let klen = t.key.chars().count();
        if klen == 0 {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                "Tag keys must not be empty",
            ));
        }
        if klen > 128 {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!(
                    "Value ({}) for parameter key is invalid. Length exceeds maximum of 128 characters",
                    t.key
                ),
            ));
        }
        if t.value.chars().count() > 256 {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!(
                    "Value ({}) for parameter value is invalid. Length exceeds maximum of 256 characters",
                    t.value
                ),
            ));
        }
        if t.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                "Tag keys starting with 'aws:' are reserved for internal use",
            ));
        }
        if !seen.insert(t.key.as_str()) {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!("Duplicate tag key '{}' specified", t.key),
            ));
        }
    }
    if tags.len() > MAX_TAGS_PER_RESOURCE {
        return Err(tag_limit());
    }
    Ok(())
}

fn tag_limit() -> ApiError {
    ApiError::new(
        ErrorCode::TagLimitExceeded,
        "The maximum number of Tags for a resource has been reached.",
    )
}

/// The tags a create call should apply to a resource of `kind`: every specification must
/// name that resource type (or, for calls creating several kinds, one of them).
pub fn from_specifications(
    specs: &[TagSpecification],
    kind: ResourceKind,
) -> Result<Vec<Tag>, ApiError> {
    let mut out = Vec::new();
    for s in specs {
        if s.resource_type.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                "Resource type must be specified in TagSpecification",
            ));
        }
        if s.resource_type != kind.tag_resource_type() {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!(
                    "'{}' is not a valid taggable resource type for this operation.",
                    s.resource_type
                ),
            ));
        }
        out.extend(s.tags.iter().cloned());
    }
    validate(&out)?;
    Ok(out)
}

/// The error AWS answers for an id of the right form that names nothing (or another
/// account's resource, which must look the same).
pub fn not_found(kind: ResourceKind, id: &str) -> ApiError {
    let (code, what) = match kind {
        ResourceKind::KeyPair => (ErrorCode::InvalidKeyPairNotFound, "key pair"),
        _ => (ErrorCode::InvalidID, "ID"),
    };
    match code {
        ErrorCode::InvalidID => ApiError::new(code, format!("The ID '{id}' is not valid")),
        _ => ApiError::new(code, format!("The {what} '{id}' does not exist")),
    }
}

/// Resolve the resources of a CreateTags/DeleteTags call, in the caller's account.
fn check_resources(c: &dyn gureum_store::Tx, account: &str, ids: &[String]) -> CoreResult<()> {
    for id in ids {
        let Some(kind) = ResourceKind::of_id(id) else {
            return Err(
                ApiError::new(ErrorCode::InvalidID, format!("The ID '{id}' is not valid")).into(),
            );
        };
        if gureum_types::ResourceId::parse(kind, id).is_none() {
            return Err(
                ApiError::new(ErrorCode::InvalidID, format!("The ID '{id}' is not valid")).into(),
            );
        }
        if c.resources().kind_of(account, id)?.is_none() {
            return Err(not_found(kind, id).into());
        }
    }
    Ok(())
}

impl Describable for TagDescription {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        Some(vec![match name {
            "resource-id" => self.resource_id.clone(),
            "resource-type" => self.resource_type.clone(),
            "key" => self.key.clone(),
            "value" => self.value.clone(),
            _ => return None,
        }])
    }
}

impl Cloud {
    pub(crate) async fn create_tags(
        &self,
        account: String,
        ids: Vec<String>,
        tags: Vec<Tag>,
    ) -> CoreResult<Response> {
        validate(&tags)?;
        let acct = account.clone();
        let out = self
            .blocking(move |s| {
                s.write(|tx| {
                    check_resources(tx, &account, &ids)?;
                    for id in &ids {
                        let mut keys: HashSet<String> =
                            tx.tags().keys_of(&account, id)?.into_iter().collect();
                        keys.extend(tags.iter().map(|t| t.key.clone()));
                        if keys.len() > MAX_TAGS_PER_RESOURCE {
                            return Err(CoreError::Api(tag_limit()));
                        }
                        tx.tags().put(&account, id, &tags)?;
                    }
                    Ok(())
                })
            })
            .await;
        // Key pairs show their tags: their cached view is stale now (even on failure, to be safe).
        self.key_cache.invalidate(&acct);
        out?;
        Ok(Response::CreateTags)
    }

    pub(crate) async fn delete_tags(
        &self,
        account: String,
        ids: Vec<String>,
        tags: Vec<DeleteTag>,
    ) -> CoreResult<Response> {
        let acct = account.clone();
        let out = self
            .blocking(move |s| {
                s.write(|tx| {
                    check_resources(tx, &account, &ids)?;
                    for id in &ids {
                        if tags.is_empty() {
                            // No Tag.N at all deletes every tag of the resource, as on AWS.
                            tx.tags().delete_all(&account, id)?;
                        }
                        for t in &tags {
                            tx.tags().delete(&account, id, &t.key, t.value.as_deref())?;
                        }
                    }
                    Ok(())
                })
            })
            .await;
        self.key_cache.invalidate(&acct);
        out?;
        Ok(Response::DeleteTags)
    }

    pub(crate) async fn describe_tags(
        &self,
        account: String,
        filters: Vec<Filter>,
        page: Page,
    ) -> CoreResult<Response> {
        describe::validate_filters(
            &filters,
            &["resource-id", "resource-type", "key", "value"],
            false,
        )?;
        let rows = self
            .blocking(move |s| s.read(|c| Ok(c.tags().describe(&account)?)))
            .await?;
        let items: Vec<TagDescription> = rows
            .into_iter()
            .map(|(resource_id, kind, key, value)| TagDescription {
                resource_type: ResourceKind::of_id(&resource_id)
                    .map(|k| k.tag_resource_type().to_string())
                    .unwrap_or(kind),
                resource_id,
                key,
                value,
            })
            .filter(|t| describe::matches(t, &filters))
            .collect();
        let (tags, next_token) =
            describe::paginate(items, |t| format!("{}\u{0}{}", t.resource_id, t.key), &page)?;
        Ok(Response::DescribeTags { tags, next_token })
    }
}

impl Cloud {
    /// Run one tag action for the calling account (the dry-run check is
    /// [`Cloud::dispatch`]'s).
    pub(crate) async fn dispatch_tags(&self, ctx: &Ctx, action: Action) -> CoreResult<Response> {
        let acct = ctx.account_id.clone();
        Ok(match action {
            Action::CreateTags { resources, tags } => {
                self.create_tags(acct, resources, tags).await?
            }
            Action::DeleteTags { resources, tags } => {
                self.delete_tags(acct, resources, tags).await?
            }
            Action::DescribeTags { filters, page } => {
                self.describe_tags(acct, filters, page).await?
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn aws_limits() {
        validate(&[t("Name", "x")]).unwrap();
        assert!(validate(&[t("aws:x", "1")]).is_err());
        assert!(validate(&[t("", "1")]).is_err());
        assert!(validate(&[t(&"k".repeat(129), "1")]).is_err());
        validate(&[t(&"k".repeat(128), &"v".repeat(256))]).unwrap();
        assert!(validate(&[t("a", &"v".repeat(257))]).is_err());
        assert!(validate(&[t("a", "1"), t("a", "2")]).is_err());
        let many: Vec<Tag> = (0..51).map(|i| t(&format!("k{i}"), "")).collect();
        assert_eq!(
            validate(&many).unwrap_err().code,
            ErrorCode::TagLimitExceeded
        );
    }

    #[test]
    fn specifications_must_name_the_resource_type() {
        let spec = |rt: &str| TagSpecification {
            resource_type: rt.into(),
            tags: vec![t("Name", "x")],
        };
        assert_eq!(
            from_specifications(&[spec("key-pair")], ResourceKind::KeyPair)
                .unwrap()
                .len(),
            1
        );
        assert!(from_specifications(&[spec("instance")], ResourceKind::KeyPair).is_err());
    }
}
