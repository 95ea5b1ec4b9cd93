//! An S3 client for SeaweedFS with the few calls tests need.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use crate::{HarnessError, Services};

/// An S3 client pointed at the test S3 server, path-style and signed.
///
/// Made per test: the SDK's connection pool belongs to the runtime that first used it.
#[derive(Debug, Clone)]
pub struct S3 {
    client: aws_sdk_s3::Client,
}

impl S3 {
    /// A client with the credentials the services accept.
    pub fn new(services: &Services) -> Self {
        Self::with_credentials(services, &services.aws_access_key_id, &services.aws_secret_access_key)
    }

    /// A client for the same server signing with other credentials, to test refusals.
    ///
    /// Built from explicit settings only (no environment, no profile files), so a developer's
    /// own AWS configuration can never leak into a test.
    pub fn with_credentials(services: &Services, access_key_id: &str, secret_access_key: &str) -> Self {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&services.s3_endpoint)
            .region(Region::new(services.aws_region.clone()))
            .credentials_provider(Credentials::new(
                access_key_id,
                secret_access_key,
                None,
                None,
                "sluice-e2e",
            ))
            .force_path_style(true)
            .build();
        Self { client: aws_sdk_s3::Client::from_conf(config) }
    }

    /// The SDK client, for calls this wrapper does not offer.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Creates `bucket`.
    ///
    /// # Errors
    ///
    /// If the request fails, including when the bucket already exists.
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), HarnessError> {
        self.client
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(HarnessError::s3(format!("creating bucket {bucket}")))?;
        Ok(())
    }

    /// Writes `body` to `bucket`/`key`.
    ///
    /// # Errors
    ///
    /// If the request fails.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: impl Into<Vec<u8>>,
    ) -> Result<(), HarnessError> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body.into()))
            .send()
            .await
            .map_err(HarnessError::s3(format!("putting s3://{bucket}/{key}")))?;
        Ok(())
    }

    /// Reads the whole object at `bucket`/`key`.
    ///
    /// # Errors
    ///
    /// If the request fails, the object does not exist, or the body cannot be read.
    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>, HarnessError> {
        let operation = format!("getting s3://{bucket}/{key}");
        let response = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(HarnessError::s3(operation.clone()))?;
        let body = response.body.collect().await.map_err(HarnessError::s3(operation))?;
        Ok(body.into_bytes().to_vec())
    }

    /// Every key under `prefix` in `bucket`, sorted, across all result pages.
    ///
    /// # Errors
    ///
    /// If a listing request fails.
    pub async fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, HarnessError> {
        let mut keys = Vec::new();
        let mut pages = self.client.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(HarnessError::s3(format!("listing s3://{bucket}/{prefix}")))?;
            keys.extend(page.contents().iter().filter_map(|object| object.key().map(str::to_owned)));
        }
        keys.sort();
        Ok(keys)
    }

    /// Deletes every object under `prefix` in `bucket`.
    ///
    /// # Errors
    ///
    /// If listing or deleting fails.
    pub async fn delete_prefix(&self, bucket: &str, prefix: &str) -> Result<(), HarnessError> {
        let keys = self.list_keys(bucket, prefix).await?;
        // DeleteObjects takes at most 1000 keys per request.
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|key| ObjectIdentifier::builder().key(key).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(HarnessError::s3("building a delete request"))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(HarnessError::s3("building a delete request"))?;
            self.client
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(HarnessError::s3(format!("deleting s3://{bucket}/{prefix}")))?;
        }
        Ok(())
    }
}
