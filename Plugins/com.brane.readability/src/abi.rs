//! The C ABI of brane_plugin.h, mirrored by hand; build.rs reads the header's own sizes and
//! offsets: a size that drifts stops the build, an offset that drifts fails `cargo test`.
//! (Kept to Rust 1.63, Debian 12's, so `apt install cargo` builds it.)
use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};

#[allow(dead_code)]
mod header {
    include!(concat!(env!("OUT_DIR"), "/header.rs"));
}
pub use header::{ERROR, LOG_WARNING, OK};

/// The 1.0 prefix of `brane_host_api`: all this plugin reads (later fields are checked by size).
#[repr(C)]
pub struct HostApi {
    pub struct_size: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub log: Option<unsafe extern "C" fn(level: u32, message: *const c_char, length: usize)>,
    pub config: Option<unsafe extern "C" fn(length: *mut usize) -> *const c_char>,
}

#[repr(C)]
pub struct Descriptor {
    pub magic: u32,
    pub struct_size: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub kind: u32,
    pub id: *const c_char,
    pub version: *const c_char,
    pub init: Option<unsafe extern "C" fn(host: *const HostApi) -> c_int>,
    pub invoke: Option<unsafe extern "C" fn(*const c_char, *const u8, usize, *mut *mut u8, *mut usize) -> c_int>,
    pub release: Option<unsafe extern "C" fn(*mut u8, usize)>,
    pub shutdown: Option<unsafe extern "C" fn()>,
}

// The descriptor is immutable and its pointers are to static data.
unsafe impl Sync for Descriptor {}

const _: () = assert!(std::mem::size_of::<Descriptor>() == header::DESCRIPTOR_SIZE);
const _: () = assert!(std::mem::size_of::<HostApi>() == header::HOST_API_SIZE_1_0);

#[cfg(test)]
mod layout {
    use super::*;
    use std::mem::MaybeUninit;
    use std::ptr::addr_of;

    macro_rules! offset {
        ($type:ty, $field:ident) => {{
            let value = MaybeUninit::<$type>::uninit();
            let base = value.as_ptr();
            unsafe { (addr_of!((*base).$field) as *const u8).offset_from(base as *const u8) as usize }
        }};
    }

    #[test]
    fn every_field_sits_where_the_header_puts_it() {
        assert_eq!(offset!(Descriptor, kind), header::DESCRIPTOR_KIND);
        assert_eq!(offset!(Descriptor, id), header::DESCRIPTOR_ID);
        assert_eq!(offset!(Descriptor, version), header::DESCRIPTOR_VERSION);
        assert_eq!(offset!(Descriptor, init), header::DESCRIPTOR_INIT);
        assert_eq!(offset!(Descriptor, invoke), header::DESCRIPTOR_INVOKE);
        assert_eq!(offset!(Descriptor, release), header::DESCRIPTOR_RELEASE);
        assert_eq!(offset!(Descriptor, shutdown), header::DESCRIPTOR_SHUTDOWN);
        assert_eq!(offset!(HostApi, log), header::HOST_LOG);
        assert_eq!(offset!(HostApi, config), header::HOST_CONFIG);
    }
}

/// What a synapse plugin implements: one tools/call, answered with JSON or an error message.
pub trait Plugin {
    const ID: &'static CStr;
    const VERSION: &'static CStr;
    fn call(method: &str, input: &[u8]) -> Result<String, String>;
}

/// The descriptor for `P`, as `brane_plugin_entry` returns it.
pub const fn descriptor<P: Plugin>() -> Descriptor {
    Descriptor {
        magic: header::MAGIC,
        struct_size: header::DESCRIPTOR_SIZE as u32,
        abi_major: header::ABI_MAJOR,
        abi_minor: header::ABI_MINOR,
        kind: header::KIND_SYNAPSE,
        id: P::ID.as_ptr(),
        version: P::VERSION.as_ptr(),
        init: Some(init),
        invoke: Some(invoke::<P>),
        release: Some(release),
        shutdown: None,
    }
}

static mut HOST: *const HostApi = std::ptr::null();

unsafe extern "C" fn init(host: *const HostApi) -> c_int {
    if host.is_null() || ((*host).struct_size as usize) < header::HOST_API_SIZE_1_0 {
        return ERROR;
    }
    HOST = host;
    OK
}

/// Sends a log line to the host (calls are serialised: the runner calls from one thread).
pub fn log(level: u32, message: &str) {
    unsafe {
        if let Some(log) = HOST.as_ref().and_then(|host| host.log) {
            log(level, message.as_ptr().cast(), message.len());
        }
    }
}

/// One call: the method and input are borrowed for the call; the answer is a buffer this side
/// allocated, handed back to `release`. A panic becomes an error answer, never an unwind into C.
unsafe extern "C" fn invoke<P: Plugin>(method: *const c_char, input: *const u8, length: usize,
                                       output: *mut *mut u8, output_length: *mut usize) -> c_int {
    if method.is_null() || output.is_null() || output_length.is_null() {
        return ERROR;
    }
    let method = CStr::from_ptr(method).to_string_lossy();
    let input = if input.is_null() { &[][..] } else { std::slice::from_raw_parts(input, length) };
    let outcome = catch_unwind(AssertUnwindSafe(|| P::call(&method, input)))
        .unwrap_or_else(|_| Err("the plugin panicked".to_string()));
    let (status, reply) = match outcome {
        Ok(json) => (OK, json),
        Err(message) => {
            log(LOG_WARNING, &message);
            (ERROR, format!("{{\"message\":{}}}", crate::json::quoted(&message)))
        }
    };
    let bytes: Box<[u8]> = reply.into_bytes().into_boxed_slice();
    *output_length = bytes.len();
    *output = Box::into_raw(bytes).cast();
    status
}

unsafe extern "C" fn release(output: *mut u8, length: usize) {
    if !output.is_null() {
        drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(output, length)));
    }
}
