# The scripts of scripts/ as data for nix/apps.nix: their names, the Deno
# permissions of their shebang line (the one source of truth for what each
# script may do) and a one-line description from their module comment.
#
# Builtins only, no nixpkgs, so the tests evaluate it with a bare `nix eval`.
let
  inherit (builtins)
    attrNames
    concatStringsSep
    filter
    head
    isString
    listToAttrs
    map
    match
    readDir
    readFile
    split
    ;

  shebangPrefix = "#!/usr/bin/env -S deno run";

  lines = text: filter isString (split "\n" text);

  # "--allow-read", "--allow-write=.", "--deny-env=HOME"…: nothing else is
  # accepted, so a shebang can never smuggle `-A` or an unrelated flag in.
  permissionPattern = "--(allow|deny)-(read|write|net|env|run|sys|ffi|import)(=[^ ]+)?";

  permissionsOf =
    name: text:
    let
      first = head (lines text);
      rest = match "${shebangPrefix}((  *[^ ]+)*) *" first;
      words = if rest == null then [ ] else filter (w: isString w && w != "") (split " +" (head rest));
      bad = filter (w: match permissionPattern w == null) words;
    in
    if rest == null then
      throw "rocm-nightly: ${name}: the first line must be `${shebangPrefix} <permissions>`, found ${builtins.toJSON first}"
    else if bad != [ ] then
      throw "rocm-nightly: ${name}: shebang flags ${concatStringsSep ", " (map (w: "\"${w}\"") bad)} are not narrow Deno permissions (--allow-<kind>[=…] or --deny-<kind>[=…])"
    else
      words;

  # The first sentence of the module's JSDoc summary paragraph (the comment
  # lines after `/**` up to a blank line or a tag), joined into one line.
  summaryOf =
    name: text:
    let
      step =
        state: line:
        let
          prose = match " \\* ([^@ ].*[^ ]) *" line;
        in
        if state.done then
          state
        else if !state.open then
          state // { open = match " */\\*\\*.*" line != null; }
        else if prose == null then
          state // { done = true; }
        else
          state // { words = state.words ++ prose; };
      paragraph = concatStringsSep " " (
        (builtins.foldl' step {
          open = false;
          done = false;
          words = [ ];
        } (lines text)).words
      );
      sentence = match "(([^.]|[.][^ ])*[.])( .*)?" paragraph;
    in
    if paragraph == "" then
      "Runs scripts/${name}.ts"
    else if sentence == null then
      paragraph
    else
      head sentence;

  # { <name> = { file; permissions; description; }; } for every scripts/*.ts
  # (private `_*.ts` helpers excluded).
  scriptsIn =
    dir:
    let
      entries = readDir dir;
      names = filter (
        file: entries.${file} == "regular" && match "[^_].*\\.ts" file != null
      ) (attrNames entries);
    in
    listToAttrs (
      map (
        file:
        let
          name = head (match "(.*)\\.ts" file);
          text = readFile (dir + "/${file}");
        in
        {
          inherit name;
          value = {
            inherit file;
            permissions = permissionsOf "scripts/${file}" text;
            description = summaryOf name text;
          };
        }
      ) names
    );
in
{
  inherit permissionsOf summaryOf scriptsIn;
}
