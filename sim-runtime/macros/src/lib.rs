//! `#[sim_runtime::test]` turns an `async fn` into a `#[test]` that runs it under the
//! seed harness (`SIM_SEED`, `SIM_SEEDS`, `SIM_SEED_BASE`, `SIM_CHECK_DETERMINISM`).
//!
//! Options: `seeds = N` (the default sweep size), `time_limit_secs = N`, `buggify`,
//! `probes = "crate::module"` (whose `sometimes!` probes `SIM_REQUIRE_PROBES=1` requires;
//! by default the test's crate).
//!
//! `#[derive(TraceEvent)]` makes a type a typed trace event (see `sim_runtime::trace`).

use proc_macro::TokenStream;
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{parse_macro_input, Expr, ItemFn, Lit, Meta, Token};

#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    let input = parse_macro_input!(item as ItemFn);
    let parser = Punctuated::<Meta, Token![,]>::parse_terminated;
    let args = match parser.parse(attr) {
        Ok(a) => a,
        Err(e) => return e.to_compile_error().into(),
    };
    let mut seeds = None;
    let mut time_limit = None;
    let mut buggify = false;
    let mut probes = None;
    for meta in args {
        match &meta {
            Meta::NameValue(nv) if nv.path.is_ident("probes") => match &nv.value {
                Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(s), ..
                }) => probes = Some(s.value()),
                other => {
                    return syn::Error::new_spanned(other, "expected a module path in quotes")
                        .to_compile_error()
                        .into()
                }
            },
            Meta::NameValue(nv)
                if nv.path.is_ident("seeds") || nv.path.is_ident("time_limit_secs") =>
            {
                let value = match &nv.value {
                    Expr::Lit(l) => match &l.lit {
                        Lit::Int(i) => i.base10_parse::<u64>().ok(),
                        _ => None,
                    },
                    _ => None,
                };
                let Some(v) = value else {
                    return syn::Error::new_spanned(&nv.value, "expected an integer")
                        .to_compile_error()
                        .into();
                };
                if nv.path.is_ident("seeds") {
                    seeds = Some(v);
                } else {
                    time_limit = Some(v);
                }
            }
            Meta::Path(p) if p.is_ident("buggify") => buggify = true,
            other => {
                return syn::Error::new_spanned(
                    other,
                    "unknown option: expected `seeds = N`, `time_limit_secs = N`, `buggify` or `probes = \"module\"`",
                )
                .to_compile_error()
                .into()
            }
        }
    }
    if input.sig.asyncness.is_none() {
        return syn::Error::new_spanned(
            input.sig.fn_token,
            "#[sim_runtime::test] needs an async fn",
        )
        .to_compile_error()
        .into();
    }
    let attrs = &input.attrs;
    let vis = &input.vis;
    let name = &input.sig.ident;
    let output = &input.sig.output;
    let body = &input.block;
    let seeds = seeds.map(|n| quote!(.seeds(#n)));
    let probes = probes.map(|p| quote!(.probes(&[#p])));
    let limit =
        time_limit.map(|s| quote!(config.time_limit = Some(::std::time::Duration::from_secs(#s));));
    let expanded = quote! {
        #[test]
        #(#attrs)*
        #vis fn #name() {
            async fn body() #output #body
            let mut config = ::sim_runtime::SimConfig::default();
            config.buggify = #buggify;
            #limit
            ::sim_runtime::harness::Harness::new(
                env!("CARGO_PKG_NAME"),
                ::sim_runtime::harness::test_path(module_path!(), stringify!(#name)),
            )
            #seeds
            #probes
            .config(config)
            .run(body);
        }
    };
    expanded.into()
}

/// `#[derive(TraceEvent)]` with `#[trace_event(name = "component.what")]`: makes an owned
/// `Clone + Debug + Serialize` type a typed trace event whose captures keep clones of it.
/// An event that borrows what it reports implements `TraceEvent` by hand instead.
#[proc_macro_derive(TraceEvent, attributes(trace_event))]
pub fn derive_trace_event(item: TokenStream) -> TokenStream {
    let input = parse_macro_input!(item as syn::DeriveInput);
    let mut name = None;
    for attr in &input.attrs {
        if !attr.path().is_ident("trace_event") {
            continue;
        }
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let lit: syn::LitStr = meta.value()?.parse()?;
                name = Some(lit);
                Ok(())
            } else {
                Err(meta.error("unknown option: expected `name = \"...\"`"))
            }
        });
        if let Err(e) = parsed {
            return e.to_compile_error().into();
        }
    }
    let Some(name) = name else {
        return syn::Error::new_spanned(
            &input.ident,
            "#[derive(TraceEvent)] needs #[trace_event(name = \"component.what\")]",
        )
        .to_compile_error()
        .into();
    };
    if name.value().is_empty() {
        return syn::Error::new_spanned(&name, "an event name must not be empty")
            .to_compile_error()
            .into();
    }
    if let Some(lt) = input.generics.lifetimes().next() {
        return syn::Error::new_spanned(
            lt,
            "an event that borrows implements TraceEvent by hand, naming its owned type",
        )
        .to_compile_error()
        .into();
    }
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let expanded = quote! {
        impl #impl_generics ::sim_runtime::trace::TraceEvent for #ident #ty_generics #where_clause {
            const NAME: &'static str = #name;
            type Owned = Self;
            fn to_owned_event(&self) -> Self {
                ::std::clone::Clone::clone(self)
            }
        }
    };
    expanded.into()
}
