pub mod jt808;
