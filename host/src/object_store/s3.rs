//! S3 through aws-sdk-s3: endpoint override and path style for S3-compatible servers,
//! credentials from the standard AWS chain (environment, profile, container, instance).

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use tokio::io::AsyncRead;

use super::{ObjectMeta, StoreError};
use crate::config::S3Config;

/// Bodies at least this large are uploaded in parts, so one failed request does not resend
/// the whole file and no single request exceeds what S3 accepts (5 GiB).
const MULTIPART_THRESHOLD: usize = 16 << 20;
/// Size of each part but the last (S3's minimum is 5 MiB).
const PART_SIZE: usize = 8 << 20;

/// One S3 client for the process; cheap to clone.
#[derive(Debug, Clone)]
pub struct S3Client {
    client: aws_sdk_s3::Client,
}

impl S3Client {
    /// A client for the configured endpoint and region.
    pub async fn new(config: &S3Config) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(config.region.clone()))
            .load()
            .await;
        let mut builder =
            aws_sdk_s3::config::Builder::from(&shared).force_path_style(config.force_path_style);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        S3Client { client: aws_sdk_s3::Client::from_conf(builder.build()) }
    }

    /// Whether the server answers these credentials (ListBuckets), for readiness checks.
    ///
    /// # Errors
    /// The server's error, or why it could not be reached.
    pub async fn check_reachable(&self) -> Result<(), String> {
        match self.client.list_buckets().send().await {
            Ok(_) => Ok(()),
            Err(error) => Err(format!("{}", aws_sdk_s3::error::DisplayErrorContext(&error))),
        }
    }

    /// The bucket `name` through this client.
    pub fn bucket(&self, name: &str) -> S3Bucket {
        S3Bucket { client: self.client.clone(), name: name.to_owned() }
    }
}

/// One bucket.
#[derive(Debug, Clone)]
pub struct S3Bucket {
    client: aws_sdk_s3::Client,
    name: String,
}

fn failure<E: ProvideErrorMetadata + std::error::Error + 'static>(
    bucket: &S3Bucket,
    operation: &'static str,
    key: &str,
    error: SdkError<E>,
) -> StoreError {
    let message = match error.as_service_error() {
        Some(service) => {
            format!("{}: {}", service.code().unwrap_or("error"), service.message().unwrap_or("no message"))
        }
        None => format!("{}", aws_sdk_s3::error::DisplayErrorContext(&error)),
    };
    StoreError::S3 { operation, bucket: bucket.name.clone(), key: key.to_owned(), message }
}

fn unquote(etag: Option<&str>) -> String {
    etag.unwrap_or_default().trim_matches('"').to_owned()
}

impl S3Bucket {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the bucket exists and these credentials may use it.
    ///
    /// # Errors
    /// [`StoreError`] for failures other than "no such bucket".
    pub async fn exists(&self) -> Result<bool, StoreError> {
        match self.client.head_bucket().bucket(&self.name).send().await {
            Ok(_) => Ok(true),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
            Err(error) if error.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(false),
            Err(error) => Err(failure(self, "HeadBucket", "", error)),
        }
    }

    pub(super) async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        if body.len() >= MULTIPART_THRESHOLD {
            return self.put_multipart(key, body).await;
        }
        self.client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|error| failure(self, "PutObject", key, error))?;
        Ok(())
    }

    async fn put_multipart(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        let started = self
            .client
            .create_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .map_err(|error| failure(self, "CreateMultipartUpload", key, error))?;
        let Some(upload_id) = started.upload_id() else {
            return Err(StoreError::S3 {
                operation: "CreateMultipartUpload",
                bucket: self.name.clone(),
                key: key.to_owned(),
                message: "the answer has no upload id".to_owned(),
            });
        };
        match self.upload_parts(key, upload_id, &body).await {
            Ok(parts) => {
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.name)
                    .key(key)
                    .upload_id(upload_id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                    .send()
                    .await
                    .map_err(|error| failure(self, "CompleteMultipartUpload", key, error))?;
                Ok(())
            }
            Err(error) => {
                // Parts of an abandoned upload are billed until aborted.
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.name)
                    .key(key)
                    .upload_id(upload_id)
                    .send()
                    .await;
                Err(error)
            }
        }
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        body: &Bytes,
    ) -> Result<Vec<CompletedPart>, StoreError> {
        let mut parts = Vec::new();
        for (index, start) in (0..body.len()).step_by(PART_SIZE).enumerate() {
            let chunk = body.slice(start..(start + PART_SIZE).min(body.len()));
            let number = i32::try_from(index + 1).unwrap_or(i32::MAX);
            let uploaded = self
                .client
                .upload_part()
                .bucket(&self.name)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(chunk))
                .send()
                .await
                .map_err(|error| failure(self, "UploadPart", key, error))?;
            parts.push(CompletedPart::builder().part_number(number).set_e_tag(uploaded.e_tag).build());
        }
        Ok(parts)
    }

    pub(super) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(body) = self.open(key).await? else { return Ok(None) };
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut Box::pin(body), &mut bytes).await.map_err(|error| {
            StoreError::S3 {
                operation: "GetObject",
                bucket: self.name.clone(),
                key: key.to_owned(),
                message: error.to_string(),
            }
        })?;
        Ok(Some(bytes))
    }

    /// Streams the object's body, or `None` when there is no such key; for inputs too large
    /// to hold in memory.
    ///
    /// # Errors
    /// [`StoreError`] when the request fails for another reason.
    pub async fn open(&self, key: &str) -> Result<Option<impl AsyncRead + Send + use<>>, StoreError> {
        match self.client.get_object().bucket(&self.name).key(key).send().await {
            Ok(object) => Ok(Some(object.body.into_async_read())),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(error) => Err(failure(self, "GetObject", key, error)),
        }
    }

    pub(super) async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        match self.client.head_object().bucket(&self.name).key(key).send().await {
            Ok(head) => Ok(Some(ObjectMeta {
                key: key.to_owned(),
                size: u64::try_from(head.content_length().unwrap_or(0)).unwrap_or(0),
                etag: unquote(head.e_tag()),
            })),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(error) => Err(failure(self, "HeadObject", key, error)),
        }
    }

    pub(super) async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let mut objects = Vec::new();
        let mut pages =
            self.client.list_objects_v2().bucket(&self.name).prefix(prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| failure(self, "ListObjectsV2", prefix, error))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                objects.push(ObjectMeta {
                    key: key.to_owned(),
                    size: u64::try_from(object.size().unwrap_or(0)).unwrap_or(0),
                    etag: unquote(object.e_tag()),
                });
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    pub(super) async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        // The copy source is `bucket/key`, URL-encoded.
        let source = format!("{}/{}", self.name, encode_copy_source(from));
        self.client
            .copy_object()
            .bucket(&self.name)
            .key(to)
            .copy_source(source)
            .send()
            .await
            .map_err(|error| failure(self, "CopyObject", from, error))?;
        Ok(())
    }

    pub(super) async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .map_err(|error| failure(self, "DeleteObject", key, error))?;
        Ok(())
    }
}

/// Percent-encodes a key for `x-amz-copy-source`, keeping `/` and unreserved characters.
fn encode_copy_source(key: &str) -> String {
    let mut encoded = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources_are_percent_encoded_except_slashes() {
        assert_eq!(
            encode_copy_source("a/dt=2024-05-01/t+0+1.parquet"),
            "a/dt%3D2024-05-01/t%2B0%2B1.parquet"
        );
    }
}
