//! The host's S3 store against the real S3 server: credentials from the standard AWS chain
//! (here the environment), large bodies uploaded in parts, copies and deletes.

use sluice::config::S3Config;
use sluice::object_store::{ObjectStore, S3Client};
use sluice_e2e::{Services, TestScope};

#[test]
fn a_large_object_is_uploaded_in_parts_and_read_back_whole() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let Some(services) = runtime.block_on(Services::get()) else { return };
    // The standard chain reads the environment; this test binary has one thread here and
    // nothing else reads the environment yet.
    for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
        if let Some((_, value)) = services.env.iter().find(|(key, _)| key == name) {
            // SAFETY: no other thread of this process runs or reads the environment now.
            unsafe { std::env::set_var(name, value) };
        }
    }
    runtime.block_on(async {
        let scope = TestScope::new(services, "object_store_multipart").await.expect("scope");
        let config = S3Config {
            endpoint: Some(services.s3_endpoint.clone()),
            region: services.aws_region.clone(),
            force_path_style: true,
        };
        let store = ObjectStore::S3(S3Client::new(&config).await.bucket(scope.bucket()));
        let body: Vec<u8> = (0..20 * 1024 * 1024 + 123).map(|i: usize| (i % 251) as u8).collect();
        let key = scope.key("large.bin");
        store.put(&key, body.clone()).await.expect("multipart put");
        let meta = store.head(&key).await.expect("head").expect("the object exists");
        assert_eq!(meta.size, body.len() as u64);
        assert!(meta.etag.ends_with("-3"), "an ETag of a 3-part upload, got {}", meta.etag);
        assert_eq!(store.get(&key).await.expect("get"), Some(body.clone()), "read back whole");

        let copy = scope.key("copies/large+1.bin");
        store.copy(&key, &copy).await.expect("copy");
        store.delete(&key).await.expect("delete");
        assert_eq!(store.head(&key).await.expect("head"), None);
        assert_eq!(store.get(&copy).await.expect("get copy").map(|b| b.len()), Some(body.len()));
        let listed: Vec<String> =
            store.list(&scope.key("")).await.expect("list").into_iter().map(|m| m.key).collect();
        assert_eq!(listed, vec![copy]);
        assert_eq!(store.get(&scope.key("missing")).await.expect("get missing"), None);
    });
}
