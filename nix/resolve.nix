# Target resolution: the registry of flake.nix plus the target table
# (lib/targets.json) decide which tarball a target name stands for.
#
# Builtins only, no nixpkgs: the tests evaluate this file with a bare
# `nix eval` on a machine without nixpkgs, error messages included.
#
# A name is an ISA (gfx1100) or a family (gfx110X-all, multiarch). An ISA
# follows its fallback list from the table to the first tracked family with a
# hash; a family means that tarball or the family it was renamed to.
{ registry, targets }:
let
  inherit (builtins)
    attrNames
    concatStringsSep
    elem
    filter
    isAttrs
    isString
    length
    listToAttrs
    map
    match
    replaceStrings
    ;

  fail = message: throw "rocm-nightly: ${message}";

  hashes =
    if isAttrs (registry.srcHashes or null) then
      registry.srcHashes
    else
      fail "the registry (nightly in flake.nix) has no srcHashes attribute set";

  version =
    if isString (registry.version or null) && match "[0-9]+\\.[0-9]+\\.[0-9]+[0-9A-Za-z.+]*" registry.version != null then
      registry.version
    else
      fail "nightly.version ${builtins.toJSON (registry.version or null)} is not a TheRock version";

  baseUrl =
    let
      url = registry.baseUrl or null;
    in
    if isString url && match "https?://[^ \"]+" url != null then
      (if match ".*/" url != null then url else "${url}/")
    else
      fail "nightly.baseUrl ${builtins.toJSON url} is not an http(s) URL";

  # Every tracked family (a key of srcHashes), sorted; and those with a hash.
  tracked = attrNames hashes;
  available = filter (family: hashes.${family} != null) tracked;

  families = targets.families;
  isas = targets.isas;

  quote = name: "\"${name}\"";
  arrows = concatStringsSep " → ";
  listOrNone = names: if names == [ ] then "none" else concatStringsSep ", " names;

  # The families to try for `target`, in order, or null when the name is
  # neither in the target table nor tracked by the registry.
  chainOf =
    target:
    if isas ? ${target} then
      isas.${target}.fallback
    else if families ? ${target} then
      [ target ] ++ (if families.${target} ? renamedTo then [ families.${target}.renamedTo ] else [ ])
    else if hashes ? ${target} then
      [ target ]
    else
      null;

  hashOf = family: hashes.${family} or null;

  checkedHash =
    family:
    let
      hash = hashOf family;
    in
    if isString hash && match "sha256-[A-Za-z0-9+/]{43}=" hash != null then
      hash
    else
      fail "nightly.srcHashes.${family} = ${builtins.toJSON hash} is not a sha256 SRI hash";

  # The tarball's file name (a dev version's "+" stays literal: it is a valid
  # store-path character) and its URL (where "+" must be escaped).
  tarballName = family: "therock-dist-linux-${family}-${version}.tar.gz";
  tarballUrl = family: baseUrl + replaceStrings [ "+" ] [ "%2B" ] (tarballName family);

  firstAvailable =
    chain:
    let
      found = filter (family: hashOf family != null) chain;
    in
    if found == [ ] then null else builtins.head found;

  describeTried =
    chain:
    concatStringsSep ", " (
      map (
        family:
        if hashes ? ${family} then
          "${family} (hash is null: not fetched)"
        else
          "${family} (not tracked in nightly.srcHashes)"
      ) chain
    );

  availableText = "available targets: ${listOrNone available}";

  # Resolves `target` to the tarball to fetch, or throws naming the chain
  # that was tried and the targets that are available.
  resolve =
    target:
    let
      chain = chainOf target;
      family = firstAvailable chain;
    in
    if !(isString target) then
      fail "a target must be a string, got ${builtins.typeOf target}"
    else if chain == null then
      fail "unknown target ${quote target}: not an ISA or family in lib/targets.json nor a key of nightly.srcHashes; ${availableText}"
    else if family == null then
      fail "no tarball for target ${quote target}: tried ${
        arrows ([ target ] ++ filter (f: f != target) chain)
      } — ${describeTried chain}; ${availableText}. `nix run .#update` fetches every key of nightly.srcHashes (add the family there first if it is not tracked)"
    else
      {
        inherit target family version chain;
        hash = checkedHash family;
        name = tarballName family;
        url = tarballUrl family;
        pname = "rocm-nightly-${family}";
      };

  canResolve =
    target:
    let
      chain = chainOf target;
    in
    chain != null && firstAvailable chain != null;

  # Every name a user may ask for: families and ISAs of the table, plus
  # tracked families the table does not know yet.
  knownNames = attrNames (families // isas // hashes);

  # Package attribute names: one per family with a hash, plus ISA aliases
  # that reach one through their fallback chain. Values are target names.
  packageTargets = listToAttrs (
    map (family: {
      name = "rocm-nightly-${family}";
      value = family;
    }) available
    ++ map (isa: {
      name = "rocm-nightly-${isa}";
      value = isa;
    }) (filter (isa: !(elem isa available) && canResolve isa) (attrNames isas))
  );

  # Names that cannot be built now; evaluating them throws the resolver's
  # message (exposed under legacyPackages so `nix build .#…` explains why).
  unavailableTargets = listToAttrs (
    map (target: {
      name = "rocm-nightly-${target}";
      value = target;
    }) (filter (target: !(packageTargets ? "rocm-nightly-${target}")) knownNames)
  );
in
{
  inherit
    resolve
    chainOf
    canResolve
    tracked
    available
    packageTargets
    unavailableTargets
    tarballName
    ;
  defaultTarget = targets.defaultTarget;
}
