"""secretkit-kms-plugin: a KMS v2 (and v1beta1) encryption-provider plugin daemon."""
