# oidc_browser AUTHORIZE_URL LOGIN: a browser at the provider's own login and
# consent forms: follows redirects, submits each form it is shown (any
# password; consent granted), and prints the URL it is finally sent to (the
# application's callback, with the code or an error).
oidc_browser() {
  local url=$1 login=$2 jar page headers location action prompt origin
  jar=$(mktemp) page=$(mktemp) headers=$(mktemp)
  origin=$(sed -E 's#^(https?://[^/]+).*#\1#' <<<"$url")
  local data=()
  for _ in $(seq 12); do
    curl -s -c "$jar" -b "$jar" -D "$headers" -o "$page" "${data[@]}" "$url" || break
    data=()
    location=$(grep -i '^location:' "$headers" | tail -1 | sed -E 's/^[Ll]ocation: *//' | tr -d '\r')
    if [ -n "$location" ]; then
      case $location in
        /*) url="$origin$location" ;;
        *) url=$location ;;
      esac
      [[ $url == "$origin"* ]] && continue
      echo "$url"
      rm -f "$jar" "$page" "$headers"
      return 0
    fi
    action=$(grep -o '<form[^>]*action="[^"]*"' "$page" | head -1 | sed -E 's/.*action="([^"]*)"/\1/')
    prompt=$(grep -o 'name="prompt" value="[^"]*"' "$page" | head -1 | sed -E 's/.*value="([^"]*)"/\1/')
    [ -n "$action" ] || break
    case $action in /*) url="$origin$action" ;; *) url=$action ;; esac
    if [ "$prompt" = login ]; then
      data=(--data-urlencode prompt=login --data-urlencode "login=$login" --data-urlencode password=any)
    else
      data=(--data-urlencode "prompt=$prompt")
    fi
  done
  echo "no redirect to the application; last page:" >&2
  head -c 600 "$page" >&2
  rm -f "$jar" "$page" "$headers"
  return 1
}
