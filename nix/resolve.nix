# Target resolution: the registry of flake.nix plus the target table
# (lib/releases/targets.json) decide which tarball a target name stands for.
#
# Builtins only, no nixpkgs: the tests evaluate this file with a bare
# `nix eval` on a machine without nixpkgs, error messages included.
#
# A name is an ISA (gfx1100) or a family (gfx110X-all, multiarch). An ISA
# follows its fallback list from the table to the first tracked family with a
# hash; a family means that tarball or the family it was renamed to.
#
# `registry` is one channel of flake.nix (nightly, stable, rc): its tarballs
# are fetched from baseUrl, then from each of its `mirrors` (so a pin
# survives AMD deleting its copy), and a version in its `skip` list is known
# bad and refused. Each family's tarball is of the channel's `version`,
# unless the optional `versions.<family>` names another (`update <target>`
# moves one target and writes it there; null means the channel's version),
# so every hash describes the version it was computed for.
{
  registry,
  targets,
  channel ? "nightly",
}:
let
  inherit (builtins)
    attrNames
    concatStringsSep
    elem
    filter
    isAttrs
    isString
    length
    isList
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
      fail "the registry (${channel} in flake.nix) has no srcHashes attribute set";

  version =
    if isString (registry.version or null) && match "[0-9]+\\.[0-9]+\\.[0-9]+[0-9A-Za-z.+]*" registry.version != null then
      registry.version
    else
      fail "${channel}.version ${builtins.toJSON (registry.version or null)} is not a TheRock version";

  # The optional per-family versions; a value of null is the channel's version.
  overrides =
    let
      value = registry.versions or { };
    in
    if isAttrs value then value else fail "${channel}.versions must be an attribute set, got ${builtins.typeOf value}";

  checkVersion =
    what: value:
    if isString value && match "[0-9]+\\.[0-9]+\\.[0-9]+[0-9A-Za-z.+]*" value != null then
      value
    else
      fail "${what} ${builtins.toJSON value} is not a TheRock version";

  # The version of one family's tarball.
  versionOf =
    family:
    if (overrides.${family} or null) == null then
      version
    else
      checkVersion "${channel}.versions.${family}" overrides.${family};

  folder =
    what: url:
    if isString url && match "https?://[^ \"]+" url != null then
      (if match ".*/" url != null then url else "${url}/")
    else
      fail "${what} ${builtins.toJSON url} is not an http(s) URL";

  baseUrl = folder "${channel}.baseUrl" (registry.baseUrl or null);

  listOf =
    name:
    let
      value = registry.${name} or [ ];
    in
    if isList value then value else fail "${channel}.${name} must be a list, got ${builtins.typeOf value}";

  mirrors = map (folder "a URL of ${channel}.mirrors") (listOf "mirrors");
  skip = listOf "skip";

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
      fail "${channel}.srcHashes.${family} = ${builtins.toJSON hash} is not a sha256 SRI hash";

  # The tarball's file name (a dev version's "+" stays literal: it is a valid
  # store-path character) and its URL (where "+" must be escaped).
  tarballName = family: "therock-dist-linux-${family}-${versionOf family}.tar.gz";
  escapedName = family: replaceStrings [ "+" ] [ "%2B" ] (tarballName family);
  tarballUrls = family: map (folder: folder + escapedName family) ([ baseUrl ] ++ mirrors);

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
          "${family} (not tracked in ${channel}.srcHashes)"
      ) chain
    );

  availableText = "available targets: ${listOrNone available}";
  updateCommand =
    if channel == "nightly" then "`nix run .#update`" else "`nix run .#update -- --channel ${channel}`";

  # Why `target` cannot be resolved (a message), or null when it can.
  problem =
    target:
    let
      chain = chainOf target;
    in
    if !(isString target) then
      "a target must be a string, got ${builtins.typeOf target}"
    else if chain == null then
      "unknown target ${quote target}: not an ISA or family of rocm-nightly's target table, nor a key of ${channel}.srcHashes in flake.nix; ${availableText} (`nix run .#detect -- --list-targets` lists every ISA and family the table knows; a family it does not know yet: `nix run .#update -- ${
        if channel == "nightly" then "" else "--channel ${channel} "
      }--target <family>` adds it to ${channel}.srcHashes)"
    else if firstAvailable chain == null then
      "no tarball for target ${quote target} in the ${channel} channel: tried ${
        arrows ([ target ] ++ filter (f: f != target) chain)
      } — ${describeTried chain}; ${availableText}. ${updateCommand} fetches every key of ${channel}.srcHashes (add the family there first if it is not tracked)"
    else if elem (versionOf (firstAvailable chain)) skip then
      let
        family = firstAvailable chain;
        where = if versionOf family == version then "${channel}.version" else "${channel}.versions.${family}";
      in
      "${where} ${quote (versionOf family)} is in ${channel}.skip (known bad): ${updateCommand} moves to a good release"
    else
      null;

  # Resolves `target` to the tarball to fetch, or throws naming the chain
  # that was tried and the targets that are available.
  resolve =
    target:
    let
      family = firstAvailable (chainOf target);
      urls = tarballUrls family;
    in
    if problem target != null then
      fail (problem target)
    else
      {
        inherit
          target
          family
          channel
          urls
          ;
        version = versionOf family;
        chain = chainOf target;
        hash = checkedHash family;
        name = tarballName family;
        url = builtins.head urls;
        pname = "rocm-${channel}-${family}";
      };

  canResolve = target: problem target == null;

  # Every name a user may ask for: families and ISAs of the table, plus
  # tracked families the table does not know yet.
  knownNames = attrNames (families // isas // hashes);

  # Package attribute names: one per family with a hash, plus ISA aliases
  # that reach one through their fallback chain. Values are target names.
  packageTargets = listToAttrs (
    map (family: {
      name = "rocm-${channel}-${family}";
      value = family;
    }) (filter canResolve available)
    ++ map (isa: {
      name = "rocm-${channel}-${isa}";
      value = isa;
    }) (filter (isa: !(elem isa available) && canResolve isa) (attrNames isas))
  );

  # Names that cannot be built now; evaluating them throws the resolver's
  # message (exposed under legacyPackages so `nix build .#…` explains why).
  unavailableTargets = listToAttrs (
    map (target: {
      name = "rocm-${channel}-${target}";
      value = target;
    }) (filter (target: !(packageTargets ? "rocm-${channel}-${target}")) knownNames)
  );
in
{
  inherit
    resolve
    problem
    chainOf
    canResolve
    channel
    version
    versionOf
    tracked
    available
    packageTargets
    unavailableTargets
    tarballName
    knownNames
    ;
  defaultTarget = targets.defaultTarget;
}
