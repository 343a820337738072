pub mod catalog;
pub mod crd;
pub mod secret;
pub mod upstream;
