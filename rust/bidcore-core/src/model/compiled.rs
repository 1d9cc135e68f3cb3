//! The TL2cgen library of a model (`compiled/predictor.so`), loaded and called through its C
//! `predict`: the second [`Scorer`] beside the native [`Ensemble`].
//!
//! This is the crate's one module with `unsafe` code: loading a shared library and calling into
//! it cannot be done otherwise. What makes the calls sound is checked at load, before any row is
//! scored: the file's SHA-256 is the one the artifact's manifest records (the code run is the code
//! `bidcore compile` built and checked against LightGBM, whatever happened to the file since);
//! the library has TL2cgen 1.0's entry points, with float64 thresholds and leaf outputs (so
//! `union Entry` is 8 bytes over a double and the result an array of doubles); its feature and
//! output counts are the model's (so every buffer is as long as the code indexes). Then rows made
//! up here are scored both ways, and a library built from another model of the same shape is
//! refused too.
//!
//! The generated C has traps, worked around row by row:
//! * missing is `data[j].missing == -1`, an `int` over the first 4 bytes of the double: NaN is
//!   passed that way, and a number whose first 4 bytes are all ones (1 double in 2^32, such as
//!   the largest double) is nudged one ulp toward zero not to be taken for missing (which could
//!   change a result only if a split's threshold were exactly the nudged value);
//! * a categorical split sends every negative value right, where LightGBM truncates toward zero
//!   first (-0.5 is category 0): values of categorical features are truncated before the call;
//! * `predict` adds to its result, which is zeroed before every row;
//! * it is called with `pred_margin = 1` (raw margins) and bidcore's [`Transform`] (LightGBM's
//!   formulas) applied after, so predictions are exactly those of the native scorer's transform.
//!
//! glibc's `dlopen` hands back the library it already has under the name it is given, even when
//! the file there has been replaced since (an artifact rebuilt in place and loaded again would
//! run the old code), and a library keeps the name of its first load for as long as anything
//! holds it (so `/proc/self/fd/N`, whose `N` is reused, is no way out). On Linux the file is
//! therefore opened once, hashed through that handle, and loaded through a new symlink to the
//! handle (`/proc/self/fd/N`), named as no load of this process was named before and removed
//! once loaded: the bytes hashed are the bytes loaded, and the library loaded is that file's.

// DEV: the only place `unsafe` is allowed (the crate root denies it); every block says why it
// is sound.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr};
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use libloading::Library;
use sha2::{Digest, Sha256};

use super::ensemble::Ensemble;
use super::ensemble::ZERO_THRESHOLD;
use super::error::ModelError;
use super::transform::Transform;
use super::Scorer;

/// Largest difference of raw margins accepted between the library and the model text on the
/// rows scored at load: the tolerance `bidcore compile` checks the library against LightGBM with.
pub const AGREEMENT_TOLERANCE: f64 = 1e-9;

/// Rows scored both ways at load.
const CHECK_ROWS: usize = 128;

/// TL2cgen's `union Entry` for models with float64 thresholds (its `qvalue` member is used only
/// by libraries compiled with `quantize`, which write it themselves).
#[repr(C)]
#[derive(Clone, Copy)]
union Entry {
    missing: c_int,
    fvalue: f64,
}

// The C signatures of TL2cgen 1.0's generated `header.h`.
type PredictFn = unsafe extern "C" fn(data: *mut Entry, pred_margin: c_int, result: *mut f64);
type CountFn = unsafe extern "C" fn() -> i32;
type ClassesFn = unsafe extern "C" fn(out: *mut i32);
type TypeNameFn = unsafe extern "C" fn() -> *const c_char;

thread_local! {
    /// Each thread's row of entries: `predict` is reentrant, the buffer it reads is not shared.
    static ENTRIES: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// A model's TL2cgen library, loaded and checked. Immutable; share it between threads (the
/// generated `predict` keeps no state). Clones share the loaded library.
#[derive(Clone)]
pub struct CompiledScorer {
    predict: PredictFn,
    num_features: usize,
    num_outputs: usize,
    transform: Transform,
    /// Per feature: whether a categorical split reads it (its values are truncated first).
    categorical: Arc<[bool]>,
    /// Keeps the code `predict` points into loaded while any clone lives.
    loaded: Arc<Loaded>,
}

struct Loaded {
    _library: Library,
    path: PathBuf,
}

impl CompiledScorer {
    /// Loads the library at `path` built from `model`, after checking its SHA-256 against
    /// `sha256` (hex, as the artifact's manifest records it), its entry points, its feature and
    /// output counts, and its raw margins against `model`'s on rows made up here. Every refusal
    /// is a [`ModelError`] naming the file.
    pub fn load(path: &Path, sha256: &str, model: &Ensemble) -> Result<CompiledScorer, ModelError> {
        Self::load_checked(path, sha256, model, &model.categorical_features())
            .map_err(|reason| ModelError::new(format!("{}: {reason}", path.display())))
    }

    fn load_checked(
        path: &Path,
        sha256: &str,
        model: &Ensemble,
        categorical_features: &[usize],
    ) -> Result<CompiledScorer, String> {
        let expected = sha256.trim().to_ascii_lowercase();
        if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("the expected SHA-256 {sha256:?} is not 64 hex digits"));
        }
        let num_features = model.num_features();
        let num_outputs = model.num_outputs();
        if num_features == 0 {
            return Err("the model has no features".to_owned());
        }
        let mut categorical = vec![false; num_features];
        for &feature in categorical_features {
            *categorical.get_mut(feature).ok_or_else(|| {
                format!("categorical feature {feature} is out of range (the model has {num_features} features)")
            })? = true;
        }

        let mut file = File::open(path).map_err(|e| format!("cannot open the compiled library: {e}"))?;
        let digest = sha256_hex(&mut file).map_err(|e| format!("cannot read the compiled library: {e}"))?;
        if digest != expected {
            return Err(format!("SHA-256 is {digest}, the manifest says {expected} (corrupt or replaced)"));
        }
        let name = LoadName::new(path, &file);
        // SAFETY: loading a library runs its initialisers, so it must be code we trust: it is the
        // file whose SHA-256 the artifact's manifest records, read through the handle it is
        // loaded from (see `LoadName`). TL2cgen's C has no initialisers.
        let library = unsafe { Library::new(&name.name) }.map_err(|e| {
            // dlerror() names what it was given: name the file instead of the temporary link.
            let reason = e.to_string().replace(&name.name.display().to_string(), "the file");
            format!("cannot load the compiled library: {reason}")
        })?;
        drop((name, file));

        let predict: PredictFn = symbol(&library, "predict")?;
        let get_num_feature: CountFn = symbol(&library, "get_num_feature")?;
        let get_num_target: CountFn = symbol(&library, "get_num_target")?;
        let get_num_class: ClassesFn = symbol(&library, "get_num_class")?;
        let get_threshold_type: TypeNameFn = symbol(&library, "get_threshold_type")?;
        let get_leaf_output_type: TypeNameFn = symbol(&library, "get_leaf_output_type")?;

        let thresholds = type_name(get_threshold_type);
        let leaves = type_name(get_leaf_output_type);
        if thresholds != "float64" || leaves != "float64" {
            return Err(format!(
                "its thresholds are {thresholds} and its leaf outputs {leaves}; bidcore calls libraries of \
                 float64 models only (LightGBM's)"
            ));
        }
        // SAFETY: takes nothing, returns a constant.
        let library_features = unsafe { get_num_feature() };
        if usize::try_from(library_features) != Ok(num_features) {
            return Err(format!(
                "the library takes {library_features} features, the model text {num_features}: it was built from \
                 another model"
            ));
        }
        // SAFETY: takes nothing, returns a constant.
        let targets = unsafe { get_num_target() };
        let targets = usize::try_from(targets)
            .ok()
            .filter(|&t| (1..=num_outputs).contains(&t))
            .ok_or_else(|| format!("the library has {targets} targets, the model text {num_outputs} outputs"))?;
        let mut classes = vec![0_i32; targets];
        // SAFETY: writes one int per target, and `classes` has `get_num_target()` of them.
        unsafe { get_num_class(classes.as_mut_ptr()) };
        let max_class = classes.iter().copied().max().unwrap_or(0);
        let library_outputs = usize::try_from(max_class).ok().filter(|&c| c >= 1).map(|c| c * targets);
        if library_outputs != Some(num_outputs) {
            return Err(format!(
                "the library gives {targets} x {max_class} outputs per row, the model text {num_outputs}: it was \
                 built from another model"
            ));
        }

        let scorer = CompiledScorer {
            predict,
            num_features,
            num_outputs,
            transform: model.transform(),
            categorical: categorical.into(),
            loaded: Arc::new(Loaded { _library: library, path: path.to_owned() }),
        };
        scorer.check_against(model)?;
        Ok(scorer)
    }

    /// The file the library was loaded from.
    pub fn path(&self) -> &Path {
        &self.loaded.path
    }

    /// Raw margins of the library and of `model` on [`CHECK_ROWS`] rows made up from a fixed
    /// seed (NaN, zeros, small and large numbers, category codes seen and unseen, fractional and
    /// negative ones): a library built from another model of the same shape differs on them.
    fn check_against(&self, model: &Ensemble) -> Result<(), String> {
        let rows = check_rows(&self.categorical, CHECK_ROWS);
        let mut ours = vec![0.0; CHECK_ROWS * self.num_outputs];
        let mut theirs = vec![0.0; CHECK_ROWS * self.num_outputs];
        self.predict_raw(&rows, &mut ours);
        model.predict_raw(&rows, &mut theirs);
        let differences: Vec<f64> = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| match (a.is_nan(), b.is_nan()) {
                (true, true) => 0.0,
                (false, false) => (a - b).abs(),
                _ => f64::INFINITY,
            })
            .collect();
        let differing = differences
            .chunks_exact(self.num_outputs)
            .filter(|row| row.iter().any(|&d| d > AGREEMENT_TOLERANCE))
            .count();
        if differing == 0 {
            return Ok(());
        }
        let worst = differences.iter().copied().fold(0.0, f64::max);
        Err(format!(
            "the library disagrees with the model text on {differing} of {CHECK_ROWS} check rows (max |diff| of \
             the raw margins {worst:.6e}): it was built from another model"
        ))
    }
}

impl Scorer for CompiledScorer {
    fn num_features(&self) -> usize {
        self.num_features
    }

    fn num_outputs(&self) -> usize {
        self.num_outputs
    }

    fn transform(&self) -> Transform {
        self.transform
    }

    /// One call of the library's `predict` per row.
    fn predict_raw(&self, rows: &[f64], raw: &mut [f64]) {
        let nf = self.num_features;
        ENTRIES.with(|entries| {
            let mut entries = entries.borrow_mut();
            entries.resize(nf, Entry { fvalue: 0.0 });
            for (row, out) in rows.chunks_exact(nf).zip(raw.chunks_exact_mut(self.num_outputs)) {
                for ((entry, &x), &categorical) in entries.iter_mut().zip(row).zip(self.categorical.iter()) {
                    *entry = to_entry(x, categorical);
                }
                out.fill(0.0);
                // SAFETY: `entries` holds `num_features` entries and `out` `num_outputs` doubles,
                // the counts the library reported at load (what its `predict` reads and writes);
                // `self.loaded` keeps the library loaded; the generated `predict` keeps no state
                // between calls, so threads may call it at once, each with its own buffers.
                unsafe { (self.predict)(entries.as_mut_ptr(), 1, out.as_mut_ptr()) };
            }
        });
    }
}

impl fmt::Debug for CompiledScorer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledScorer")
            .field("path", &self.loaded.path)
            .field("num_features", &self.num_features)
            .field("num_outputs", &self.num_outputs)
            .field("transform", &self.transform)
            .finish_non_exhaustive()
    }
}

/// A feature value as the generated C reads it (see the module's list of traps).
#[inline(always)]
fn to_entry(x: f64, categorical: bool) -> Entry {
    if x.is_nan() {
        return Entry { missing: -1 };
    }
    // LightGBM's `predict` scores values within 1e-35 of zero as 0.0 (it reads dense rows as
    // sparse); the generated code would compare them.
    let x = if x.abs() <= ZERO_THRESHOLD { 0.0 } else { x };
    let x = if categorical { x.trunc() } else { x };
    // `missing` overlays the first 4 bytes: all ones there read as missing. On little-endian
    // machines they are the low mantissa bits (so one ulp less clears them); on big-endian ones
    // only a NaN has them all set, and NaN is handled above.
    let x = if x.to_ne_bytes()[..4] == [0xff; 4] { f64::from_bits(x.to_bits() - 1) } else { x };
    Entry { fvalue: x }
}

/// The entry point `name`, typed `T` (a function pointer), copied out of the library: it stays
/// valid while the library is loaded, which the scorer ensures by holding it.
fn symbol<T: Copy>(library: &Library, name: &str) -> Result<T, String> {
    // SAFETY: `T` is the signature TL2cgen 1.0's header gives `name`, and TL2cgen generated
    // this library (its hash is the artifact's; the counts and the agreement check follow).
    unsafe { library.get::<T>(name.as_bytes()) }
        .map(|symbol| *symbol)
        .map_err(|_| format!("it has no `{name}` function: not a library TL2cgen 1.0 generated"))
}

fn type_name(function: TypeNameFn) -> String {
    // SAFETY: takes nothing; TL2cgen's returns a static NUL-terminated literal ("float64"…).
    let name = unsafe { function() };
    if name.is_null() {
        return "(null)".to_owned();
    }
    // SAFETY: non-null, and NUL-terminated (above); the literal outlives this copy.
    unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned()
}

/// The name to `dlopen` an open library file by (see the module's notes on glibc): on Linux a
/// symlink to the handle, new to this process and removed when this is dropped; else, or if
/// the temporary directory takes no symlink, the handle's `/proc/self/fd/N`, else the path.
struct LoadName {
    name: PathBuf,
    link: bool,
}

impl LoadName {
    fn new(path: &Path, file: &File) -> LoadName {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            static LOADS: AtomicU64 = AtomicU64::new(0);
            let handle = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
            if handle.exists() {
                let nanos =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
                let link = std::env::temp_dir().join(format!(
                    ".bidcore-predictor-{}-{}-{nanos}.so",
                    std::process::id(),
                    LOADS.fetch_add(1, Ordering::Relaxed)
                ));
                if std::os::unix::fs::symlink(&handle, &link).is_ok() {
                    return LoadName { name: link, link: true };
                }
                return LoadName { name: handle, link: false };
            }
        }
        let _ = file;
        LoadName { name: path.to_owned(), link: false }
    }
}

impl Drop for LoadName {
    fn drop(&mut self) {
        if self.link {
            let _ = std::fs::remove_file(&self.name);
        }
    }
}

fn sha256_hex(file: &mut File) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; 1 << 16];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// `n` rows made up from a fixed seed (splitmix64), the categorical features drawn as codes.
fn check_rows(categorical: &[bool], n: usize) -> Vec<f64> {
    let mut state: u64 = 0x6269_6463_6f72_6521; // "bidcore!"
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut rows = Vec::with_capacity(n * categorical.len());
    for _ in 0..n {
        for &is_categorical in categorical {
            let r = next();
            let unit = (r >> 11) as f64 / (1_u64 << 53) as f64;
            let small = ((r >> 8) % 64) as f64;
            let value = match (is_categorical, r % 16) {
                (_, 0) => f64::NAN,
                (_, 1) => 0.0,
                (true, 2) => -1.0,
                (true, 3) => small + 0.5,
                (true, 4..=6) => ((r >> 8) % 1024) as f64,
                (true, _) => ((r >> 8) % 16) as f64,
                (false, 2..=4) => small / 8.0,
                (false, 5..=9) => unit * 8.0 - 4.0,
                (false, 10..=12) => (unit * 12.0 - 4.0).exp(),
                (false, 13) => -(unit * 12.0 - 4.0).exp(),
                (false, _) => small,
            };
            rows.push(value);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(entry: Entry) -> u64 {
        // SAFETY: every entry built in these tests has all 8 bytes written (a value, not missing).
        unsafe { entry.fvalue }.to_bits()
    }

    #[test]
    fn entries_follow_the_generated_code() {
        // SAFETY: `missing` was the member written.
        assert_eq!(unsafe { to_entry(f64::NAN, false).missing }, -1);
        assert_eq!(bits(to_entry(1.5, false)), 1.5_f64.to_bits());
        assert_eq!(bits(to_entry(-0.5, true)), (-0.0_f64).to_bits());
        assert_eq!(bits(to_entry(7.9, true)), 7.0_f64.to_bits());
        assert_eq!(bits(to_entry(-2.5, false)), (-2.5_f64).to_bits());
        if cfg!(target_endian = "little") {
            // The largest double's low 32 bits are all ones: one ulp toward zero.
            assert_eq!(bits(to_entry(f64::MAX, false)), f64::MAX.to_bits() - 1);
            assert_eq!(bits(to_entry(-f64::MAX, false)), (-f64::MAX).to_bits() - 1);
        }
        assert_eq!(bits(to_entry(f64::INFINITY, false)), f64::INFINITY.to_bits());
    }

    #[test]
    fn check_rows_are_fixed_and_mixed() {
        let categorical = [false, true, false];
        let rows = check_rows(&categorical, 64);
        assert_eq!(rows.len(), 192);
        assert_eq!(rows.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), {
            check_rows(&categorical, 64).iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        });
        assert!(rows.iter().any(|x| x.is_nan()));
        assert!(rows.iter().any(|&x| x < 0.0));
        assert!(rows.iter().skip(1).step_by(3).any(|&x| x.fract() == 0.5));
    }

    /// Feature 0 numeric (NaN goes left), feature 1 categorical ({0, 1, 2} go left); binary.
    const MODEL: &str = "tree
max_feature_idx=1
objective=binary sigmoid:1
feature_names=a b

Tree=0
num_leaves=3
num_cat=1
split_feature=0 1
threshold=1.5 0
decision_type=10 1
left_child=1 -1
right_child=-3 -2
leaf_value=0.25 -0.5 1
cat_boundaries=0 1
cat_threshold=7

Tree=1
num_leaves=1
leaf_value=0.125

end of trees
";

    /// The same model as TL2cgen writes it (tests of categorical splits as in its output);
    /// `-D` options make wrong variants.
    const LIBRARY_C: &str = r#"
#include <math.h>
#include <stdint.h>
#ifndef NF
#define NF 2
#endif
#ifndef TT
#define TT "float64"
#endif
#ifndef OFFSET
#define OFFSET 0.0
#endif
union Entry { int missing; double fvalue; int qvalue; };
int32_t get_num_target(void) { return 1; }
void get_num_class(int32_t* out) { out[0] = 1; }
int32_t get_num_feature(void) { return NF; }
const char* get_threshold_type(void) { return TT; }
const char* get_leaf_output_type(void) { return "float64"; }
void predict(union Entry* data, int pred_margin, double* result) {
  unsigned int tmp;
  if (!(data[0].missing != -1) || data[0].fvalue <= 1.5) {
    if (data[1].missing != -1 && ((tmp = (unsigned int)(data[1].fvalue)), ((data[1].fvalue >= 0)
        && (fabs(data[1].fvalue) <= (double)(1U << 24)) && ((tmp < 64 && ((7ULL >> tmp) & 1)))))) {
      result[0] += 0.25 + OFFSET;
    } else {
      result[0] += -0.5;
    }
  } else {
    result[0] += 1.0;
  }
  result[0] += 0.125;
  if (!pred_margin) { result[0] = 1.0 / (1.0 + exp(-result[0])); }
}
"#;

    /// Compiles `LIBRARY_C` with `defines` into `dir/name`; None without a C compiler.
    fn build_library(dir: &Path, name: &str, defines: &[&str]) -> Option<(PathBuf, String)> {
        std::fs::create_dir_all(dir).unwrap();
        let source = dir.join(format!("{name}.c"));
        std::fs::write(&source, LIBRARY_C).unwrap();
        let path = dir.join(name);
        let built = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&path)
            .arg(&source)
            .args(defines)
            .arg("-lm")
            .status();
        match built {
            Ok(status) if status.success() => {
                let digest = sha256_hex(&mut File::open(&path).unwrap()).unwrap();
                Some((path, digest))
            }
            _ => {
                eprintln!("no working C compiler: skipped");
                None
            }
        }
    }

    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bidcore-compiled-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn load(path: &Path, digest: &str) -> Result<CompiledScorer, ModelError> {
        let model = Ensemble::from_lightgbm_text(MODEL).unwrap();
        CompiledScorer::load(path, digest, &model)
    }

    #[test]
    fn scores_as_the_native_evaluator_through_the_traps() {
        let dir = scratch("agree");
        let Some((path, digest)) = build_library(&dir, "predictor.so", &[]) else { return };
        let scorer = load(&path, &digest).unwrap();
        let model = Ensemble::from_lightgbm_text(MODEL).unwrap();
        assert_eq!((scorer.num_features(), scorer.num_outputs()), (2, 1));
        assert_eq!(scorer.path(), path);
        let rows = [
            1.0,
            1.0,
            1.0,
            -0.5, // a fractional negative category: LightGBM's category 0, left
            1.0,
            -1.0,
            2.0,
            1.0,
            f64::NAN,
            2.9, // category 2
            f64::NAN,
            f64::NAN,
            f64::MAX, // low 32 bits all ones: a number, not missing
            1.0,
            -f64::MAX,
            1.0,
        ];
        for (raw, label) in [(true, "raw"), (false, "transformed")] {
            let (mut ours, mut native) = ([0.0; 8], [0.0; 8]);
            for _ in 0..2 {
                // Twice: `predict` accumulates, the scorer zeroes.
                if raw {
                    scorer.predict_raw(&rows, &mut ours);
                } else {
                    scorer.predict(&rows, &mut ours);
                }
            }
            if raw {
                model.predict_raw(&rows, &mut native);
            } else {
                model.predict(&rows, &mut native);
            }
            assert_eq!(ours, native, "{label}");
        }
        let mut one = [0.0];
        scorer.predict_raw(&rows[2..4], &mut one);
        assert_eq!(one[0], 0.25 + 0.125);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let scorer = scorer.clone();
                std::thread::spawn(move || {
                    let mut out = [0.0; 8];
                    for _ in 0..1000 {
                        scorer.predict_raw(&rows, &mut out);
                    }
                    out
                })
            })
            .collect();
        let mut native = [0.0; 8];
        model.predict_raw(&rows, &mut native);
        for thread in threads {
            assert_eq!(thread.join().unwrap(), native);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_libraries_of_other_models() {
        let dir = scratch("refuse");
        let cases: [(&str, &[&str], &str); 3] = [
            ("features.so", &["-DNF=3"], "takes 3 features, the model text 2"),
            ("float32.so", &["-DTT=\"float32\""], "thresholds are float32"),
            ("other.so", &["-DOFFSET=0.001"], "disagrees with the model text on"),
        ];
        for (name, defines, reason) in cases {
            let Some((path, digest)) = build_library(&dir, name, defines) else { return };
            let err = load(&path, &digest).unwrap_err();
            assert!(err.0.contains(reason), "{name}: {err}");
            assert!(err.0.starts_with(&path.display().to_string()), "{err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_library_replaced_at_the_same_path_is_loaded_anew() {
        let dir = scratch("reload");
        let Some((good, good_digest)) = build_library(&dir, "good.so", &[]) else { return };
        let Some((other, other_digest)) = build_library(&dir, "other.so", &["-DOFFSET=0.001"]) else { return };
        let path = dir.join("predictor.so");
        std::fs::copy(&good, &path).unwrap();
        let first = load(&path, &good_digest).unwrap();
        // Replaced while the first is still loaded: a plain dlopen of the path would return the
        // first library, which agrees; the new one must be loaded, and disagrees.
        std::fs::copy(&other, dir.join("next.so")).unwrap();
        std::fs::rename(dir.join("next.so"), &path).unwrap();
        let err = load(&path, &other_digest).unwrap_err();
        assert!(err.0.contains("disagrees"), "{err}");
        drop(first);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_library_loaded_twice_and_dropped_once_is_no_stale_name() {
        // glibc names a library after its first load; a second load of the same file shares it.
        // Once the first is dropped, a new load must not be matched to that name.
        let dir = scratch("names");
        let Some((good, good_digest)) = build_library(&dir, "good.so", &[]) else { return };
        let Some((other, other_digest)) = build_library(&dir, "other.so", &["-DOFFSET=0.001"]) else { return };
        for _ in 0..4 {
            let first = load(&good, &good_digest).unwrap();
            let second = load(&good, &good_digest).unwrap();
            drop(first);
            let err = load(&other, &other_digest).unwrap_err();
            assert!(err.0.contains("disagrees"), "{err}");
            drop(second);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_a_missing_file_and_a_bad_digest() {
        let model = Ensemble::from_lightgbm_text(
            "tree\nmax_feature_idx=0\nobjective=regression\n\nTree=0\nnum_leaves=1\nleaf_value=1\n\nend of trees\n",
        )
        .unwrap();
        let missing = Path::new("/nonexistent/predictor.so");
        let err = CompiledScorer::load(missing, &"0".repeat(64), &model).unwrap_err();
        assert!(err.0.starts_with("/nonexistent/predictor.so: cannot open"), "{err}");
        let err = CompiledScorer::load(missing, "abc", &model).unwrap_err();
        assert!(err.0.contains("not 64 hex digits"), "{err}");
        let err = CompiledScorer::load_checked(missing, &"0".repeat(64), &model, &[3]).unwrap_err();
        assert!(err.contains("out of range"), "{err}");

        // A file that is not what the manifest says is refused before it is loaded.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/model/compiled.rs");
        {
            let err = CompiledScorer::load(&path, &"0".repeat(64), &model).unwrap_err();
            assert!(err.0.contains("(corrupt or replaced)"), "{err}");
            let digest = sha256_hex(&mut File::open(&path).unwrap()).unwrap();
            let err = CompiledScorer::load(&path, &digest.to_uppercase(), &model).unwrap_err();
            assert!(err.0.contains("cannot load the compiled library: the file: "), "{err}");
        }
    }
}
