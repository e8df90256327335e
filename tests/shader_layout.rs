//! CPU only: every uniform and storage struct in shaders/*.wgsl, as naga lays
//! it out, has the size and field offsets of its host `#[repr(C)]` twin
//! (`borex::compute::gpu::host_layouts`, measured with `offset_of!`). A field
//! reordered, added or retyped on either side moves an offset or the size.

use borex::compute::gpu::{host_layouts, HostLayout};
use naga::{AddressSpace, Module, TypeInner};
use std::collections::BTreeSet;
use std::path::Path;

/// One struct as naga laid it out: name, size (span), (member, offset).
#[derive(Debug)]
struct ShaderStruct {
    name: String,
    size: u32,
    members: Vec<(String, u32)>,
    /// Stride when the binding is an array of this struct.
    array_stride: Option<u32>,
}

/// Structs behind `var<uniform>` and `var<storage>` bindings, directly or as an array's element.
fn bound_structs(module: &Module) -> Vec<ShaderStruct> {
    let mut out: Vec<ShaderStruct> = Vec::new();
    for (_, var) in module.global_variables.iter() {
        if !matches!(var.space, AddressSpace::Uniform | AddressSpace::Storage { .. }) {
            continue;
        }
        let (ty, array_stride) = match &module.types[var.ty].inner {
            TypeInner::Array { base, stride, .. } => (*base, Some(*stride)),
            _ => (var.ty, None),
        };
        let t = &module.types[ty];
        if let TypeInner::Struct { members, span } = &t.inner {
            let name = t.name.clone().expect("WGSL structs are named");
            if out.iter().any(|s| s.name == name) {
                continue;
            }
            let members = members.iter().map(|m| (m.name.clone().expect("named member"), m.offset)).collect();
            out.push(ShaderStruct { name, size: *span, members, array_stride });
        }
    }
    out
}

/// Differences between a shader struct and its host twin (empty when they agree).
/// Padding fields (`_…`) may be split differently (`_pad: [u32; 2]` vs `_pad0, _pad1`): only the size covers them.
fn differences(shader: &ShaderStruct, host: &HostLayout) -> Vec<String> {
    let mut diffs = Vec::new();
    let at = format!("{} {}", host.shader, host.wgsl_struct);
    if shader.size as usize != host.size {
        diffs.push(format!("{at}: size {} in WGSL, {} on the host", shader.size, host.size));
    }
    if let Some(stride) = shader.array_stride {
        if stride as usize != host.size {
            diffs.push(format!("{at}: array stride {stride} in WGSL, host size {}", host.size));
        }
    }
    let real = |n: &str| !n.starts_with('_');
    for (name, offset) in shader.members.iter().filter(|(n, _)| real(n)) {
        match host.fields.iter().find(|(h, _)| h == name) {
            Some((_, h)) if *h == *offset as usize => {}
            Some((_, h)) => diffs.push(format!("{at}: field {name} at {offset} in WGSL, {h} on the host")),
            None => diffs.push(format!("{at}: field {name} has no host twin")),
        }
    }
    for (name, _) in host.fields.iter().filter(|(n, _)| real(n)) {
        if !shader.members.iter().any(|(s, _)| s == name) {
            diffs.push(format!("{at}: host field {name} is not in the shader"));
        }
    }
    diffs
}

fn parse(path: &Path, src: &str) -> Module {
    naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(src)))
}

fn shaders() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "expected borex's ten shaders in {}", dir.display());
    files
        .into_iter()
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect()
}

#[test]
fn every_shader_struct_matches_its_host_twin() {
    let hosts = host_layouts();
    let mut used = BTreeSet::new();
    let mut diffs = Vec::new();
    let mut checked = 0;
    for (file, src) in shaders() {
        let module = parse(Path::new(&file), &src);
        let structs = bound_structs(&module);
        assert!(!structs.is_empty(), "{file} binds no struct");
        for s in &structs {
            let Some(i) = hosts.iter().position(|h| h.shader == file && h.wgsl_struct == s.name) else {
                diffs.push(format!("{file} {}: no host twin in borex::compute::gpu::host_layouts", s.name));
                continue;
            };
            used.insert(i);
            diffs.extend(differences(s, &hosts[i]));
            checked += 1;
        }
    }
    for (i, h) in hosts.iter().enumerate() {
        if !used.contains(&i) {
            diffs.push(format!("host twin {} {} matches no bound shader struct", h.shader, h.wgsl_struct));
        }
    }
    assert!(diffs.is_empty(), "layout mismatches:\n{}", diffs.join("\n"));
    // 10 shaders: 10 Params, plus BoxMask and Slot.
    assert_eq!(checked, 12);
}

/// The check itself catches a reordered field on either side.
#[test]
fn a_reordered_field_is_caught_on_either_side() {
    let hosts = host_layouts();
    let (file, src) = shaders().into_iter().find(|(f, _)| f == "gp_posterior.wgsl").unwrap();
    let host = hosts.iter().find(|h| h.shader == file && h.wgsl_struct == "Slot").unwrap();
    let slot = |src: &str| {
        bound_structs(&parse(Path::new(&file), src)).into_iter().find(|s| s.name == "Slot").expect("Slot is bound")
    };
    assert!(differences(&slot(&src), host).is_empty());

    // Shader side: swap `kappa: f32` and `lr: f32` in the WGSL text.
    let swapped = src.replacen("    kappa: f32,\n    lr: f32,", "    lr: f32,\n    kappa: f32,", 1);
    assert_ne!(swapped, src, "the Slot struct changed: update this test");
    let d = differences(&slot(&swapped), host);
    assert!(d.iter().any(|m| m.contains("field kappa at 36 in WGSL, 32 on the host")), "{d:?}");

    // Host side: the same swap in the host's offsets.
    let mut moved = host.clone();
    let k = moved.fields.iter().position(|(n, _)| *n == "kappa").unwrap();
    let l = moved.fields.iter().position(|(n, _)| *n == "lr").unwrap();
    let (ko, lo) = (moved.fields[k].1, moved.fields[l].1);
    moved.fields[k].1 = lo;
    moved.fields[l].1 = ko;
    let d = differences(&slot(&src), &moved);
    assert!(d.iter().any(|m| m.contains("field lr at 36 in WGSL, 32 on the host")), "{d:?}");

    // A host struct one field longer changes the size and the array stride.
    let mut longer = host.clone();
    longer.size += 4;
    assert_eq!(differences(&slot(&src), &longer).len(), 2);
}
