fn greet(name: &str) -> String {
    format!("hello, {name}")
}

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "world".into());
    println!("{}", greet(&name));
}

#[cfg(test)]
mod tests {
    #[test]
    fn greets_by_name() {
        assert_eq!(super::greet("gantry"), "hello, gantry");
    }
}
